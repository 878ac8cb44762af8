//! xLAM function-calling-60k (`Salesforce/xlam-function-calling-60k`): a
//! JSON list of `{"id", "query", "tools", "answers"}` records, `tools` and
//! `answers` being JSON-encoded strings. Each record is one single-turn
//! task; its tools use xLAM's per-parameter form, normalised to JSON
//! Schema (the original kept, see [`crate::schema`]).

use super::{
    for_each_record, json_field, record_id, str_field, DataError, DropReason, Dropped, Loaded,
};
use crate::message::Message;
use crate::task::Task;
use crate::tool::ToolSpec;
use serde_json::Value;
use std::path::Path;

/// The `source` of xLAM tasks.
pub const SOURCE: &str = "xlam";

/// Converts one record (`index` is its position in the file). Records whose
/// tools or answers cannot be read, whose answers are an empty list, or
/// whose answers call a tool not among the candidates, are dropped with a
/// reason.
///
/// ```
/// use serde_json::json;
/// let record = json!({
///     "id": 8,
///     "query": "Peak of [1, 3, 2]?",
///     "tools": "[{\"name\": \"find_peak_element\", \"description\": \"Finds a peak.\", \"parameters\": {\"nums\": {\"description\": \"The list.\", \"type\": \"List[int]\"}}}]",
///     "answers": "[{\"name\": \"find_peak_element\", \"arguments\": {\"nums\": [1, 3, 2]}}]"
/// });
/// let task = toolgym_env::data::xlam::convert_record(0, &record).unwrap();
/// assert_eq!(task.id, "xlam-8");
/// assert_eq!(task.query(), Some("Peak of [1, 3, 2]?"));
/// assert_eq!(task.ground_truth[0].arguments["nums"], json!([1, 3, 2]));
/// ```
// A dropped record (the rare path) is returned by value, like a task.
#[allow(clippy::result_large_err)]
pub fn convert_record(index: usize, record: &Value) -> Result<Task, Dropped> {
    let id = record_id(record);
    let drop = |reason, detail: String| Dropped {
        source: SOURCE.into(),
        index,
        id: id.clone(),
        turn: None,
        reason,
        detail,
        file: None,
        line: None,
    };
    if !record.is_object() {
        return Err(drop(
            DropReason::BadRecord,
            format!(
                "record is {}, not an object",
                toolgym_reward::json_type_name(record)
            ),
        ));
    }
    let query = str_field(record, "query").map_err(|e| drop(DropReason::BadRecord, e))?;
    if query.trim().is_empty() {
        return Err(drop(
            DropReason::BadRecord,
            "field \"query\" is empty: no request to answer".into(),
        ));
    }
    let tools_json = json_field(record, "tools").map_err(|e| drop(DropReason::BadTools, e))?;
    let tools = ToolSpec::list_from_json(&tools_json)
        .map_err(|e| drop(DropReason::BadTools, e.to_string()))?;
    if tools.is_empty() {
        return Err(drop(DropReason::NoTools, "empty tool list".into()));
    }
    // An integer past 64 bits, read as a float, would no longer be the
    // record's: `json_field` refuses it (and the record reader does, for
    // fields given as JSON rather than as text).
    let answers = json_field(record, "answers").map_err(|e| drop(DropReason::BadAnswers, e))?;
    let calls = super::calls_exactly_read(answers).map_err(|e| drop(DropReason::BadAnswers, e))?;
    if calls.is_empty() {
        // As ToolACE's empty call turns: a task with no call to make is
        // not what the record means to teach (irrelevance tasks are made
        // on purpose, by `--irrelevance-rate`).
        return Err(drop(
            DropReason::EmptyCallList,
            "\"answers\" is an empty call list".into(),
        ));
    }
    if let Some(c) = calls
        .iter()
        .find(|c| !tools.iter().any(|t| t.name == c.name))
    {
        return Err(drop(
            DropReason::UnknownTool,
            format!("answer calls {:?}, not among the candidate tools", c.name),
        ));
    }
    let task_id = format!(
        "{SOURCE}-{}",
        id.clone().unwrap_or_else(|| index.to_string())
    );
    let task = Task::new(task_id, SOURCE, tools, vec![Message::user(query)], calls);
    super::reads_back(&task).map_err(|e| drop(DropReason::Unreadable, e))?;
    Ok(task)
}

/// Reads and converts an xLAM file (a JSON list, or JSON Lines).
pub fn load(path: &Path) -> Result<Loaded, DataError> {
    let mut out = Loaded::default();
    out.raw_records = for_each_record(path, |index, line, record| {
        let result = match record {
            Ok(r) => convert_record(index, &r),
            Err(message) => Err(Dropped {
                source: SOURCE.into(),
                index,
                id: None,
                turn: None,
                reason: DropReason::BadRecord,
                detail: message,
                file: None,
                line: Some(line),
            }),
        };
        match result {
            Ok(task) => out.tasks.push(task),
            Err(d) => out.dropped.push(Dropped {
                line: d.line.or(Some(line)),
                ..d
            }),
        }
    })?;
    Ok(out)
}
