//! Fuzzes the xLAM and ToolACE record converters on arbitrary JSON.
//! Contract: every task they make survives the task JSONL round trip;
//! conversion is deterministic; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolgym_env::data::{toolace, xlam};
use toolgym_env::Task;

fn round_trip(task: &Task) {
    let line = serde_json::to_string(task).expect("a task serialises");
    let back: Task = serde_json::from_str(&line).expect("a task line parses");
    assert_eq!(&back, task);
}

fuzz_target!(|data: &[u8]| {
    let Ok(record) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let x = xlam::convert_record(0, &record);
    if let Ok(task) = &x {
        round_trip(task);
    }
    assert_eq!(
        format!("{x:?}"),
        format!("{:?}", xlam::convert_record(0, &record))
    );
    for no_call_tasks in [false, true] {
        let options = toolace::ToolAceOptions { no_call_tasks };
        let t = toolace::convert_record(0, &record, options);
        for task in &t.tasks {
            round_trip(task);
        }
    }
});
