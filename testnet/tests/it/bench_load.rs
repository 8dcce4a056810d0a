//! `goodwill bench load` end to end on a small cluster: what it submits is committed, and the
//! report (JSON) carries the figures it promises.

#![allow(clippy::unwrap_used)]

use crate::common;

#[test]
fn bench_load_commits_what_it_submits_and_reports_it() {
    let report =
        common::bench_load_report(&["--nodes", "2", "--tps", "30", "--duration", "3", "--slot-ms", "500"]);
    assert_eq!(report["nodes"], 2);
    assert!(report["verifications_per_second_per_core"].as_f64().unwrap() > 1000.0, "{report}");
    assert!(report["limit_tps"].as_f64().unwrap() > 0.0);
    let trial = &report["trials"][0];
    assert_eq!(trial["submitted"], 90, "{trial}");
    assert_eq!(trial["accepted"], 90, "{trial}");
    assert_eq!(trial["committed"], 90, "{trial}");
    assert!(trial["rejected"].as_object().unwrap().is_empty(), "{trial}");
    assert!(trial["latency_ms_p99"].as_u64().unwrap() >= trial["latency_ms_p50"].as_u64().unwrap());
    let nodes = trial["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert!(
        nodes.iter().all(
            |n| n["cpu_seconds"].as_f64().unwrap() > 0.0 && n["peak_resident_mb"].as_f64().unwrap() > 1.0
        ),
        "{trial}"
    );
    assert_eq!(report["max_sustained_tps"], 30, "{report}");
}
