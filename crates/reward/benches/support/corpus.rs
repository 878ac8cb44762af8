//! A deterministic, realistic mixed corpus of completions for benchmarks:
//! correct single and parallel calls, wrong arguments, wrong names, broken
//! JSON, missing or broken tags, and no-call cases, with think texts of a
//! few hundred characters as real models write them.
//!
//! Shared by `benches/score.rs` and `examples/bench_corpus.rs` (which writes
//! it as JSONL for the Python baseline).

use serde_json::{json, Value};

/// One benchmark case.
pub struct Case {
    /// The completion text.
    pub completion: String,
    /// The ground truth, a JSON list of calls.
    pub ground_truth: Value,
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.next() as usize % xs.len()]
    }
}

const CITIES: [&str; 8] = [
    "Paris",
    "Tokyo",
    "New York",
    "São Paulo",
    "Berlin",
    "Nairobi",
    "Sydney",
    "Toronto",
];
const THINK: [&str; 4] = [
    "The user is asking about the weather and wants a forecast for several days, so I should call the forecast tool with the city and the number of days. The unit should be metric since the user did not say otherwise.",
    "To answer this I need two pieces of information: the current exchange rate and the converted amount. The convert_currency function takes an amount, a source currency and a target currency, which the user has given.",
    "The request mentions a flight search between two airports on a specific date with a cabin class. I will call search_flights with origin, destination, date and passengers; nothing else is needed for this step.",
    "This is a simple lookup. The user wants restaurant suggestions near a location with a cuisine filter and a maximum price level, which map directly onto the parameters of find_restaurants.",
];

fn calls(rng: &mut Lcg, n: usize) -> Vec<Value> {
    (0..n)
        .map(|_| match rng.next() % 4 {
            0 => json!({"name": "get_weather_forecast", "arguments": {"city": rng.pick(&CITIES), "days": rng.next() % 7 + 1, "unit": "metric"}}),
            1 => json!({"name": "convert_currency", "arguments": {"amount": (rng.next() % 10000) as f64 / 4.0, "from": "USD", "to": "EUR"}}),
            2 => json!({"name": "search_flights", "arguments": {"origin": "SFO", "destination": "JFK", "date": format!("2025-0{}-1{}", rng.next() % 9 + 1, rng.next() % 9), "passengers": rng.next() % 4 + 1, "cabin": "economy"}}),
            _ => json!({"name": "find_restaurants", "arguments": {"location": rng.pick(&CITIES), "cuisine": ["italian", "thai"], "max_price": rng.next() % 4 + 1, "open_now": true}}),
        })
        .collect()
}

fn reply(think: &str, payload: &str) -> String {
    format!("<think>{think}</think>\n<tool_call>\n{payload}\n</tool_call>")
}

/// `n` cases, deterministic for a given `seed`.
pub fn corpus(n: usize, seed: u64) -> Vec<Case> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|_| {
            let think = *rng.pick(&THINK);
            let kind = rng.next() % 20;
            let count = if kind >= 16 { 3 } else { 1 };
            let truth = calls(&mut rng, count);
            let mut pred = truth.clone();
            let text = |v: &Vec<Value>| serde_json::to_string(v).unwrap();
            let completion = match kind {
                // Correct single calls (and parallel: 16..=18, shuffled).
                0..=7 => reply(think, &text(&pred)),
                8..=10 => {
                    pred[0]["arguments"]
                        .as_object_mut()
                        .unwrap()
                        .insert("days".into(), json!(99));
                    reply(think, &text(&pred))
                }
                11 => {
                    pred[0]["name"] = json!("get_forecast");
                    reply(think, &text(&pred))
                }
                12 => {
                    let s = text(&pred);
                    reply(think, &s[..s.len() - 3])
                }
                13 => format!("<tool_call>\n{}\n</tool_call>", text(&pred)),
                14 => format!("<think>{think}\n<tool_call>\n{}\n</tool_call>", text(&pred)),
                15 => reply(think, "[]"),
                16..=18 => {
                    pred.rotate_left(1);
                    reply(think, &text(&pred))
                }
                _ => {
                    pred.pop();
                    reply(think, &text(&pred))
                }
            };
            Case {
                completion,
                ground_truth: Value::Array(truth),
            }
        })
        .collect()
}
