//! The built-in tool families: tools, their query templates and the
//! vocabularies their arguments are drawn from. Kept short on purpose: the
//! default demo trains a tiny model on a CPU.

/// Where a parameter's values come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Values {
    /// Strings from a named vocabulary.
    Words(&'static str, &'static [&'static str]),
    /// Integers in a fixed inclusive range.
    Ints(i64, i64),
    /// Integers from 1 to the config's `number_max`.
    Numbers,
}

/// A parameter of a built-in tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamDef {
    /// Its name.
    pub name: &'static str,
    /// JSON Schema type.
    pub json_type: &'static str,
    /// Whether the schema lists it as required.
    pub required: bool,
    /// Whether the schema lists the vocabulary as an `enum`.
    pub is_enum: bool,
    /// Where values come from.
    pub values: Values,
}

/// A built-in tool: its spec and the query templates that call it.
/// Templates name the arguments they set as `{param}`; a template without
/// an optional parameter's slot leaves it out of the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ToolDef {
    /// The family.
    pub family: &'static str,
    /// The tool name.
    pub name: &'static str,
    /// The tool description.
    pub description: &'static str,
    /// Its parameters.
    pub params: &'static [ParamDef],
    /// Query templates.
    pub templates: &'static [&'static str],
}

const fn p(
    name: &'static str,
    json_type: &'static str,
    required: bool,
    values: Values,
) -> ParamDef {
    ParamDef {
        name,
        json_type,
        required,
        is_enum: false,
        values,
    }
}

const fn e(name: &'static str, values: Values) -> ParamDef {
    ParamDef {
        name,
        json_type: "string",
        required: true,
        is_enum: true,
        values,
    }
}

const CITIES: Values = Values::Words(
    "cities",
    &[
        "Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Delhi", "Rome", "Sydney", "Boston", "Madrid",
        "Seoul", "Nairobi", "Berlin", "Dublin", "Quito", "Hanoi",
    ],
);
const UNITS: Values = Values::Words(
    "units",
    &[
        "km", "miles", "meters", "feet", "kg", "pounds", "liters", "cups",
    ],
);
const CURRENCIES: Values = Values::Words(
    "currencies",
    &["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR"],
);
const TITLES: Values = Values::Words(
    "titles",
    &[
        "dentist",
        "team sync",
        "gym",
        "lunch",
        "yoga",
        "code review",
        "haircut",
        "piano lesson",
        "standup",
        "doctor",
        "book club",
        "date night",
    ],
);
const DATES: Values = Values::Words(
    "dates",
    &[
        "Monday", "Tuesday", "Friday", "Sunday", "May 3", "June 12", "July 8", "March 21",
        "Oct 30", "Dec 1", "April 9", "Aug 15",
    ],
);
const TIMES: Values = Values::Words(
    "times",
    &["9am", "10am", "noon", "2pm", "4pm", "6pm", "8pm", "7:30am"],
);
const TOPICS: Values = Values::Words(
    "topics",
    &[
        "solar power",
        "black holes",
        "jazz",
        "chess",
        "electric cars",
        "vaccines",
        "volcanoes",
        "robots",
        "coffee",
        "bees",
        "tennis",
        "rust lang",
        "sharks",
        "mars",
    ],
);
const SYMBOLS: Values = Values::Words(
    "symbols",
    &[
        "AAPL", "MSFT", "TSLA", "NVDA", "AMZN", "GOOG", "META", "IBM", "ORCL", "INTC",
    ],
);
const NAMES: Values = Values::Words(
    "names",
    &[
        "Alice", "Bob", "Carol", "Dan", "Eve", "Frank", "Grace", "Heidi", "Ivan", "Judy",
        "Mallory", "Oscar",
    ],
);
const SUBJECTS: Values = Values::Words(
    "subjects",
    &[
        "the report",
        "lunch",
        "the budget",
        "the trip",
        "the launch",
        "the invoice",
        "the party",
        "the demo",
    ],
);
const CHORES: Values = Values::Words(
    "chores",
    &[
        "call mom",
        "buy milk",
        "water plants",
        "pay rent",
        "take pills",
        "feed the cat",
        "stretch",
        "send the fax",
    ],
);
const PHRASES: Values = Values::Words(
    "phrases",
    &[
        "good morning",
        "thank you",
        "where is the station",
        "how much",
        "see you soon",
        "I am lost",
        "cheers",
        "good night",
    ],
);
const LANGUAGES: Values = Values::Words(
    "languages",
    &[
        "French", "Spanish", "German", "Italian", "Japanese", "Korean", "Dutch", "Greek",
    ],
);

/// Every built-in tool, grouped by family.
pub const TOOLS: &[ToolDef] = &[
    ToolDef {
        family: "weather",
        name: "get_weather",
        description: "Weather forecast for a city.",
        params: &[
            p("city", "string", true, CITIES),
            p("days", "integer", false, Values::Ints(1, 7)),
        ],
        templates: &[
            "What's the weather in {city}?",
            "Weather in {city} for the next {days} days?",
            "Will it rain in {city}?",
            "Give me the {days}-day forecast for {city}.",
            "How warm is it in {city} today?",
        ],
    },
    ToolDef {
        family: "weather",
        name: "get_air_quality",
        description: "Air quality index of a city.",
        params: &[p("city", "string", true, CITIES)],
        templates: &[
            "How is the air quality in {city}?",
            "Is the air clean in {city}?",
            "Air pollution level in {city}?",
        ],
    },
    ToolDef {
        family: "arithmetic",
        name: "add",
        description: "Adds two integers.",
        params: &[
            p("a", "integer", true, Values::Numbers),
            p("b", "integer", true, Values::Numbers),
        ],
        templates: &[
            "What is {a} plus {b}?",
            "Add {a} and {b}.",
            "Sum of {a} and {b}?",
            "Compute {a} + {b}.",
        ],
    },
    ToolDef {
        family: "arithmetic",
        name: "multiply",
        description: "Multiplies two integers.",
        params: &[
            p("a", "integer", true, Values::Numbers),
            p("b", "integer", true, Values::Numbers),
        ],
        templates: &[
            "What is {a} times {b}?",
            "Multiply {a} by {b}.",
            "Product of {a} and {b}?",
            "Compute {a} * {b}.",
        ],
    },
    ToolDef {
        family: "units",
        name: "convert_units",
        description: "Converts a value between units.",
        params: &[
            p("value", "number", true, Values::Numbers),
            e("from_unit", UNITS),
            e("to_unit", UNITS),
        ],
        templates: &[
            "Convert {value} {from_unit} to {to_unit}.",
            "How many {to_unit} is {value} {from_unit}?",
            "{value} {from_unit} in {to_unit}?",
            "Express {value} {from_unit} as {to_unit}.",
        ],
    },
    ToolDef {
        family: "calendar",
        name: "create_event",
        description: "Adds an event to the calendar.",
        params: &[
            p("title", "string", true, TITLES),
            p("date", "string", true, DATES),
            p("time", "string", false, TIMES),
        ],
        templates: &[
            "Schedule {title} on {date}.",
            "Add {title} to my calendar on {date} at {time}.",
            "Put {title} on {date} at {time}.",
            "Book {title} for {date}.",
        ],
    },
    ToolDef {
        family: "calendar",
        name: "list_events",
        description: "Lists calendar events on a date.",
        params: &[p("date", "string", true, DATES)],
        templates: &[
            "What's on my calendar on {date}?",
            "Show my events for {date}.",
            "Am I busy on {date}?",
        ],
    },
    ToolDef {
        family: "search",
        name: "web_search",
        description: "Searches the web.",
        params: &[p("query", "string", true, TOPICS)],
        templates: &[
            "Search the web for {query}.",
            "Look up {query} online.",
            "Find pages about {query}.",
        ],
    },
    ToolDef {
        family: "search",
        name: "search_news",
        description: "Latest news on a topic.",
        params: &[p("topic", "string", true, TOPICS)],
        templates: &[
            "Any news about {topic}?",
            "Show the latest {topic} news.",
            "What's new in {topic}?",
        ],
    },
    ToolDef {
        family: "finance",
        name: "get_stock_price",
        description: "Current price of a stock.",
        params: &[p("symbol", "string", true, SYMBOLS)],
        templates: &[
            "What's the price of {symbol}?",
            "How is {symbol} trading?",
            "Quote for {symbol} please.",
        ],
    },
    ToolDef {
        family: "finance",
        name: "convert_currency",
        description: "Converts money between currencies.",
        params: &[
            p("amount", "number", true, Values::Numbers),
            e("from_currency", CURRENCIES),
            e("to_currency", CURRENCIES),
        ],
        templates: &[
            "Convert {amount} {from_currency} to {to_currency}.",
            "How much is {amount} {from_currency} in {to_currency}?",
            "Change {amount} {from_currency} into {to_currency}.",
        ],
    },
    ToolDef {
        family: "messaging",
        name: "send_email",
        description: "Sends an email.",
        params: &[
            p("to", "string", true, NAMES),
            p("subject", "string", true, SUBJECTS),
        ],
        templates: &[
            "Email {to} about {subject}.",
            "Send {to} an email about {subject}.",
            "Write to {to} regarding {subject}.",
        ],
    },
    ToolDef {
        family: "messaging",
        name: "set_reminder",
        description: "Sets a reminder.",
        params: &[
            p("text", "string", true, CHORES),
            p("minutes", "integer", true, Values::Ints(1, 60)),
        ],
        templates: &[
            "Remind me to {text} in {minutes} minutes.",
            "In {minutes} minutes, remind me to {text}.",
            "Set a reminder to {text} in {minutes} minutes.",
        ],
    },
    ToolDef {
        family: "language",
        name: "translate",
        description: "Translates text.",
        params: &[
            p("text", "string", true, PHRASES),
            p("language", "string", true, LANGUAGES),
        ],
        templates: &[
            "Translate '{text}' to {language}.",
            "How do you say '{text}' in {language}?",
            "Say '{text}' in {language}.",
        ],
    },
    ToolDef {
        family: "language",
        name: "define_word",
        description: "Dictionary definition of a word.",
        params: &[p(
            "word",
            "string",
            true,
            Values::Words(
                "words",
                &[
                    "serendipity",
                    "quorum",
                    "ephemeral",
                    "gauge",
                    "latent",
                    "zenith",
                    "mellow",
                    "brisk",
                ],
            ),
        )],
        templates: &[
            "Define {word}.",
            "What does {word} mean?",
            "Meaning of the word {word}?",
        ],
    },
];

/// The family names, in order.
pub fn family_names() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for t in TOOLS {
        if !out.contains(&t.family) {
            out.push(t.family);
        }
    }
    out
}
