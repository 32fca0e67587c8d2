//! The serialisers, readers and the snapshot stream, checked on built reports.

mod formats {
    use super::super::*;
    use crate::{
        model::{Attribution, LatencySummary},
        output::report::{AttributionReport, FunctionReport, Target},
    };
    use std::os::unix::fs::PermissionsExt;

    fn sample_report() -> Report {
        Report {
            schema: SCHEMA.into(),
            target: Target { pid: 42, exe: "/bin/app".into(), comm: "app".into() },
            duration_ns: 5_000_000_000,
            functions: vec![FunctionReport {
                symbol: "app::f".into(),
                latency: LatencySummary {
                    count: 10,
                    min_ns: 5,
                    mean_ns: 7,
                    p50_ns: 6,
                    p90_ns: 9,
                    p99_ns: 10,
                    p999_ns: 10,
                    max_ns: 11,
                },
                attribution: AttributionReport {
                    parts: Attribution { self_oncpu_ns: 50, callees_ns: 20, ..Attribution::default() },
                    syscalls: vec![],
                },
                ..FunctionReport::default()
            }],
            ..Report::default()
        }
    }

    /// `malloc` in the executable and in libc: two rows in every table and two frames in the flame
    /// graph, each named with its object; a name in one object only stays plain.
    #[test]
    fn one_name_in_two_objects_stays_two_named_rows() {
        let mut r = sample_report();
        let mut f = r.functions[0].clone();
        f.symbol = "malloc".into();
        f.object = "/bin/app".into();
        let mut lib = f.clone();
        lib.object = "/usr/lib/x86_64-linux-gnu/libc.so.6".into();
        lib.latency.p99_ns = 99;
        f.calls = 10;
        lib.calls = 10;
        r.functions[0].calls = 10;
        r.functions.extend([f, lib]);
        let rows = |text: &str, name: &str| text.lines().filter(|l| l.contains(name)).count();
        let t = text(&r);
        assert_eq!((rows(&t, "app:malloc"), rows(&t, "libc.so.6:malloc"), rows(&t, "app::f")), (1, 1, 1), "{t}");
        let c = csv(&r);
        assert!(c.contains("\nfunction,app:malloc,") && c.contains("\nfunction,libc.so.6:malloc,"), "{c}");
        let m = markdown(&r);
        assert_eq!((rows(&m, "`app:malloc`"), rows(&m, "`libc.so.6:malloc`")), (1, 1), "{m}");
        let folded = crate::output::flame::folded(&r, crate::output::flame::Source::AllCalls);
        assert!(folded.contains("app:malloc;") && folded.contains("libc.so.6:malloc;"), "{folded}");
        assert!(folded.lines().all(|l| !l.starts_with("malloc;")), "{folded}");
    }

    #[test]
    fn json_round_trips() {
        let r = sample_report();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("r.json");
        write_atomic(&p, &json(&r)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_report(&p).unwrap_or_else(|e| panic!("{e}")), r);
        let mode = fs::metadata(&p).map(|m| m.permissions().mode()).unwrap_or(0o777);
        assert_eq!(mode & 0o022, 0, "export must not be group/world-writable: {mode:o}");
        // No temp file left behind.
        assert_eq!(fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0), 1);
    }

    /// The call tree's fields: `call_tree[]`, each slow call's `callees[]` and `nested[]` are in the
    /// JSON and read back (the nested calls were once kept in memory only).
    #[test]
    fn json_carries_the_call_tree_and_each_slow_calls_callees_and_nested_calls() {
        use crate::{
            model::PathTotals,
            model::{CalleeUse, Exemplar, NestedCall},
            output::report::CallNodeReport,
        };
        let mut r = sample_report();
        r.call_tree = vec![
            CallNodeReport {
                id: 0,
                symbol: "app::f".into(),
                totals: PathTotals { calls: 3, total_ns: 90, ..PathTotals::default() },
                ..CallNodeReport::default()
            },
            CallNodeReport {
                id: 1,
                parent: Some(0),
                symbol: "app::g".into(),
                depth: 1,
                totals: PathTotals { calls: 3, total_ns: 60, ..PathTotals::default() },
                ..CallNodeReport::default()
            },
        ];
        r.exemplars = vec![Exemplar {
            symbol: "app::f".into(),
            duration_ns: 90,
            callees: vec![CalleeUse { fn_id: 1, symbol: "app::g".into(), count: 1, total_ns: 60 }],
            nested: vec![NestedCall { fn_id: 1, symbol: "app::g".into(), depth: 1, at_ns: 5, duration_ns: 60 }],
            ..Exemplar::default()
        }];
        let v: serde_json::Value = serde_json::from_slice(&json(&r)).unwrap_or_default();
        assert_eq!(v["call_tree"][1]["parent"], 0);
        assert!(v["call_tree"][0]["parent"].is_null() && v["call_tree"][0].get("open").is_none());
        assert_eq!(v["exemplars"][0]["callees"][0]["symbol"], "app::g");
        assert_eq!(v["exemplars"][0]["nested"][0]["duration_ns"], 60);
        assert_eq!(v["exemplars"][0]["nested"][0]["depth"], 1);
        let back = parse_report(std::path::Path::new("r.json"), &json(&r)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.call_tree, r.call_tree);
        assert_eq!(back.exemplars[0].nested[0].symbol, "app::g");
        // Older reports, without them, still read.
        let old = json(&sample_report());
        assert!(parse_report(std::path::Path::new("o.json"), &old).is_ok_and(|o| o.call_tree.is_empty()));
    }

    #[test]
    fn json_has_the_v1_field_names() {
        let v: serde_json::Value = serde_json::from_slice(&json(&sample_report())).unwrap_or_default();
        let f = &v["functions"][0];
        for k in ["symbol", "count", "min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "buckets"]
        {
            assert!(!f[k].is_null(), "missing functions[].{k}");
        }
        assert_eq!(f["attribution"]["self_oncpu_ns"], 50);
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["target"]["pid"], 42);
    }

    #[test]
    fn each_probe_site_class_and_its_measured_cost_travel_in_json_and_text() {
        use crate::output::report::ProbeClassCost;
        // Issue 16: the measured cost per kind of probe site was used by the guard but never
        // written, so a report could not say why a function's numbers were mostly probe cost.
        let mut r = sample_report();
        r.functions[0].probe.site_class = "single_step".into();
        let cost = |class: &str, functions, per_call_ns| ProbeClassCost {
            class: class.into(),
            functions,
            per_call_ns,
            calibration_ns: per_call_ns / 3,
            tight_ns: per_call_ns * 2 / 3,
            sparse_ns: per_call_ns,
        };
        r.probe_costs = vec![cost("emulated", 0, 1_200), cost("nop5", 0, 900), cost("single_step", 1, 24_000)];
        let v: serde_json::Value = serde_json::from_slice(&json(&r)).unwrap_or_default();
        assert_eq!(v["functions"][0]["probe"]["site_class"], "single_step");
        assert_eq!(v["probe_costs"][2]["class"], "single_step");
        assert_eq!(v["probe_costs"][2]["per_call_ns"], 24_000);
        assert_eq!(
            (&v["probe_costs"][2]["tight_ns"], &v["probe_costs"][2]["sparse_ns"]),
            (&16_000.into(), &24_000.into())
        );
        assert_eq!(v["probe_costs"][2]["functions"], 1);
        let text_report = text(&r);
        let header: Vec<&str> = text_report.lines().take(2).collect();
        assert!(header[1].contains("single-stepped 24.0µs ×1") && !header[1].contains("emulated"), "{header:?}");
        // Older reports (and imports) have neither field: they read, and the text says nothing.
        let old = sample_report();
        let back: Report = serde_json::from_slice(&json(&old)).unwrap_or_default();
        assert!(back.probe_costs.is_empty() && back.functions[0].probe.site_class.is_empty());
        assert!(!text(&old).contains("probe cost per call"));
        assert!(!String::from_utf8_lossy(&json(&old)).contains("probe_costs"), "absent when not measured");
    }

    #[test]
    fn wrong_schema_and_garbage_are_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("x.json");
        fs::write(&p, b"{\"schema\":\"other\"}").unwrap_or_default();
        assert!(matches!(read_report(&p), Err(ExportError::Schema { .. })));
        fs::write(&p, b"not json").unwrap_or_default();
        assert!(matches!(read_report(&p), Err(ExportError::Parse { .. })));
    }

    #[test]
    fn unwritable_paths_are_caught_early() {
        assert!(check_writable(Path::new("/nonexistent-dir/x.json")).is_err());
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert!(check_writable(dir.path()).is_err());
        assert!(check_writable(&dir.path().join("ok.json")).is_ok());
        assert_eq!(fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(9), 0);
    }

    #[test]
    fn text_csv_markdown_name_the_function() {
        let r = sample_report();
        for f in [Format::Text, Format::Csv, Format::Markdown] {
            let s = String::from_utf8(serialize(&r, f)).unwrap_or_default();
            assert!(s.contains("app::f"), "{f:?}: {s}");
        }
        assert!(csv(&r).lines().nth(1).unwrap_or("").starts_with("function,app::f,10,5,7,6,9,10,10,11,50,20"));
    }

    #[test]
    fn text_names_interference_and_where_steal_is_unmeasured() {
        let mut r = sample_report();
        assert!(!text(&r).contains("interference"), "no section without --interference");
        r.interference = true;
        r.steal_source = "not available".into();
        r.functions[0].attribution.parts.irq_ns = 30_000;
        r.functions[0].attribution.parts.interference.irq_count = 2;
        r.functions[0].attribution.parts.interference.timer_count = 2;
        r.functions[0].attribution.parts.interference.page_faults = 7;
        let t = text(&r);
        assert!(t.contains("steal: not a VM / not available"), "{t}");
        assert!(t.contains("app::f: irq ×2 (local timer ×2) 30.0µs, 7 page faults"), "{t}");
        r.functions[0].attribution.parts.interference.major_faults = 3;
        assert!(text(&r).contains("app::f: irq ×2 (local timer ×2) 30.0µs, 7 page faults (3 major)"), "{}", text(&r));
        r.functions[0].attribution.parts.interference.major_faults = 0;
        r.steal_source = "kvm_steal_time".into();
        r.cpu_steal = vec![crate::model::CpuSteal { cpu: 1, steal_ns: 20_000_000, proc_stat_steal_ns: 20_000_000 }];
        let t = text(&r);
        assert!(t.contains("cpu1: steal over the run 20.0ms by the steal clock, 20.0ms by /proc/stat"), "{t}");
    }
}

mod safety_tests {
    use super::super::*;
    use crate::{
        model::Exemplar,
        output::report::{FunctionReport, ProbeReport, SyscallReport, Target},
    };

    /// A report whose every name was chosen by a hostile target.
    fn hostile() -> Report {
        let evil = "evil\x1b]0;pwned\x07\x1b[2J\u{9b}31m";
        Report {
            schema: SCHEMA.into(),
            target: Target { pid: 7, exe: format!("/tmp/{evil}"), comm: evil.into() },
            functions: vec![FunctionReport {
                symbol: format!("app::{evil}"),
                calls: 5,
                probe: ProbeReport { detached: true, ..ProbeReport::default() },
                ..FunctionReport::default()
            }],
            syscalls: vec![SyscallReport { name: evil.into(), ..SyscallReport::default() }],
            exemplars: vec![Exemplar {
                symbol: evil.into(),
                thread: evil.into(),
                duration_ns: 9,
                ..Exemplar::default()
            }],
            warnings: vec![format!("overhead guard: detached {evil}")],
            ..Report::default()
        }
    }

    #[test]
    fn no_control_character_reaches_a_text_output() {
        for f in [Format::Text, Format::Csv, Format::Markdown] {
            let out = String::from_utf8(serialize(&hostile(), f)).unwrap_or_default();
            let raw: Vec<char> = out.chars().filter(|&c| c.is_control() && c != '\n').collect();
            assert!(raw.is_empty(), "{f:?} printed raw {raw:?}: {out}");
            assert!(out.contains("\\x1b]0;pwned"), "{f:?} must show the bytes escaped: {out}");
        }
    }

    #[test]
    fn untimed_functions_show_a_dash_not_0ns() {
        // Called 5 times, timed never (entry-only, sampled out, or detached).
        let text = text(&hostile());
        let row = text.lines().find(|l| l.contains("app::")).unwrap_or_default();
        assert!(!row.contains("0ns"), "{row}");
        assert_eq!(row.matches(UNTIMED).count(), 10, "6 latency and 4 attribution cells: {row}");
        let md = markdown(&hostile());
        let row = md.lines().find(|l| l.contains("app::")).unwrap_or_default();
        assert!(!row.contains("0ns") && row.matches(UNTIMED).count() == 9, "{row}");
    }

    #[test]
    fn a_detached_function_is_marked_in_text_and_markdown() {
        // Regression (issue 16): the CSV had no way to tell a detached function's counts apart.
        let csv = csv(&hostile());
        assert!(csv.lines().next().unwrap_or_default().ends_with(",errors,detached"), "{csv}");
        let row = csv.lines().find(|l| l.starts_with("function,")).unwrap_or_default();
        assert!(row.ends_with(",true"), "{row}");
        let cells = |l: &str| l.matches(',').count();
        assert!(csv.lines().all(|l| cells(l) == cells(CSV_HEADER)), "{csv}");
        let text = text(&hostile());
        let row = text.lines().find(|l| l.contains("app::")).unwrap_or_default();
        assert!(row.starts_with("x app::"), "{row}");
        assert!(text.contains("x: probes detached by the overhead guard"), "{text}");
        assert!(markdown(&hostile()).contains("(detached by the overhead guard)"));
    }

    #[test]
    fn a_truncated_ndjson_tail_is_reported_and_the_complete_lines_used() {
        let mut first = hostile();
        first.duration_ns = 1;
        let mut second = hostile();
        second.duration_ns = 2;
        let mut data = ndjson_line(&first);
        data.extend(ndjson_line(&second));
        let cut = ndjson_line(&hostile());
        data.extend(&cut[..cut.len() / 2]);
        let r = parse_report(Path::new("s.ndjson"), &data).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.duration_ns, 2, "the last complete snapshot");
        assert!(r.warnings.iter().any(|w| w.contains("truncated")), "{:?}", r.warnings);
        // A corrupt last line that did end with a newline is not a truncation: refused.
        let mut bad = ndjson_line(&first);
        bad.extend(b"{\"schema\": oops}\n");
        assert!(parse_report(Path::new("s.ndjson"), &bad).is_err());
    }
}

mod snapshot_tests {
    use super::super::*;
    use crate::{
        model::{Attribution, Bucket, BucketHist, FuncInfo, FuncSample, FuncSyscall, Sample, Session, SyscallSample},
        output::report::RunInfo,
    };

    /// A report built from the model the way `attach` builds it.
    fn built() -> Report {
        let mut session = Session::new(
            vec![FuncInfo { id: 0, symbol: "app::f".into(), raw_symbol: "_ZN3app1fE".into(), ..FuncInfo::default() }],
            10,
        );
        let hist = |v: &[(u64, u64, u64)]| BucketHist {
            buckets: v.iter().map(|&(low_ns, high_ns, count)| Bucket { low_ns, high_ns, count }).collect(),
        };
        session.push(Sample {
            at_ns: 2_000_000_000,
            functions: vec![FuncSample {
                id: 0,
                count: 30,
                total_ns: 33_000,
                min_ns: 900,
                max_ns: 2_040,
                attribution: Attribution { self_oncpu_ns: 20_000, syscalls_ns: 13_000, ..Attribution::default() },
                total_hist: hist(&[(896, 903, 10), (992, 1007, 15), (2016, 2047, 5)]),
                self_hist: hist(&[(640, 647, 30)]),
                ..FuncSample::default()
            }],
            func_syscalls: vec![FuncSyscall { fn_id: 0, nr: 1, count: 30, total_ns: 13_500 }],
            syscalls: vec![SyscallSample {
                nr: 1,
                count: 31,
                completed: 30,
                total_ns: 13_500,
                max_ns: 700,
                hist: hist(&[(448, 455, 30)]),
                ..SyscallSample::default()
            }],
            ..Sample::default()
        });
        Report::build(&session, &RunInfo { end_reason: "duration".into(), ..RunInfo::default() })
    }

    #[test]
    fn a_built_report_round_trips_with_the_same_numbers() {
        let r = built();
        assert_eq!(r.functions[0].latency.count, 30);
        assert_eq!(r.functions[0].buckets.iter().map(|b| b.count).sum::<u64>(), 30);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("r.json");
        write_atomic(&p, &json(&r)).unwrap_or_else(|e| panic!("{e}"));
        let back = read_report(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, r);
        assert_eq!(json(&back), json(&r), "byte for byte");
    }

    #[test]
    fn snapshots_append_one_line_each_and_read_back_the_last() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let export = dir.path().join("run.json");
        let path = snapshot_path(&export);
        assert_eq!(path, dir.path().join("run.ndjson"));
        let mut s = Snapshots::create(&path, std::time::Duration::from_millis(10)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.due(), "the first snapshot waits one period");
        let mut r = built();
        r.end_reason = "running".into();
        s.write(&r).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.due());
        let mut last = built();
        last.duration_ns += 1;
        s.write(&last).unwrap_or_else(|e| panic!("{e}"));
        let text = fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().all(|l| l.starts_with("{\"schema\":\"perf-ebpf/v1\"")), "compact, one a line");
        assert_eq!(read_report(&path).unwrap_or_else(|e| panic!("{e}")), last);
        // A new run starts a new file.
        drop(s);
        Snapshots::create(&path, std::time::Duration::from_secs(1)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fs::read_to_string(&path).unwrap_or_default(), "");
        assert!(Snapshots::create(&dir.path().join("no/such/dir.ndjson"), std::time::Duration::from_secs(1)).is_err());
    }

    #[test]
    fn bpftrace_output_reads_as_a_report() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("bt.json");
        let bt = "{\"type\": \"attached_probes\", \"data\": {\"probes\": 1}}\n\
                  {\"type\": \"hist\", \"data\": {\"@ns\": [{\"min\": 1024, \"max\": 2047, \"count\": 3}]}}\n";
        fs::write(&p, bt).unwrap_or_default();
        let r = read_report(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.functions[0].symbol, "@ns");
        assert_eq!(r.tool.name, "bpftrace");
        fs::write(&p, "{\"type\": \"printf\", \"data\": \"hi\"}\n").unwrap_or_default();
        assert!(matches!(read_report(&p), Err(ExportError::Parse { .. })));
    }
}

mod table_tests {
    use super::super::*;
    use crate::{
        model::{Attribution, Bucket, BucketHist, FuncInfo, LatencySummary, Sample, Session, SyscallSample},
        output::report::{AttributionReport, FunctionReport, ProbeReport, RunInfo},
    };

    fn function(symbol: &str, calls: u64, p99_ns: u64) -> FunctionReport {
        let latency = LatencySummary {
            count: calls,
            min_ns: 4,
            p50_ns: 6,
            p90_ns: p99_ns / 2,
            p99_ns,
            p999_ns: p99_ns,
            max_ns: p99_ns,
            ..LatencySummary::default()
        };
        FunctionReport {
            symbol: symbol.into(),
            calls,
            latency,
            attribution: AttributionReport {
                parts: Attribution { self_oncpu_ns: 60, callees_ns: 40, ..Attribution::default() },
                syscalls: vec![],
            },
            ..FunctionReport::default()
        }
    }

    fn text_of(r: &Report) -> String {
        text(r)
    }

    #[test]
    fn final_tables_sort_like_the_ui_hide_uncalled_and_use_its_column_names() {
        // Regression: the tables at exit listed functions in selection order, never-called ones
        // included, under a second "CALLS" column that meant the callee share.
        let r = Report {
            schema: SCHEMA.into(),
            functions: vec![
                function("app::never", 0, 0),
                function("app::fast", 100, 1_000),
                function("app::slow", 10, 90_000),
                function("app::never_either", 0, 0),
            ],
            ..Report::default()
        };
        let text = text(&r);
        let header = text.lines().find(|l| l.starts_with("FUNCTION")).unwrap_or_default();
        assert_eq!(header.split_whitespace().filter(|w| *w == "CALLS").count(), 1, "{header}");
        assert!(header.contains("OWN") && header.contains("CALLEE") && !header.contains("SELF"), "{header}");
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("app::")).collect();
        assert_eq!(rows.len(), 2, "uncalled functions hidden:\n{text}");
        assert!(rows[0].starts_with("app::slow") && rows[1].starts_with("app::fast"), "by p99:\n{text}");
        assert!(text.contains("\nnot called: app::never, app::never_either\n"), "a few are named:\n{text}");
        let many =
            Report { functions: (0..5).map(|i| function(&format!("app::idle{i}"), 0, 0)).collect(), ..r.clone() };
        assert!(text_of(&many).contains("(5 traced functions not called: not shown"), "{}", text_of(&many));
        let md = markdown(&r);
        assert!(md.find("app::slow") < md.find("app::fast") && !md.contains("app::never"), "{md}");
        // The JSON and CSV keep every function.
        assert_eq!(csv(&r).lines().filter(|l| l.starts_with("function,")).count(), 4);
    }

    #[test]
    fn latencies_below_the_calibration_floor_read_as_less_than_it() {
        // Regression: after calibration the tables said MIN 0ns and p50 4ns: less than the
        // probe-cost correction can tell apart from zero.
        let mut f = function("app::tiny", 100, 900);
        f.latency.min_ns = 0;
        f.latency.p50_ns = 4;
        f.probe = ProbeReport { calibration_ns: 887, floor_ns: 47, ..ProbeReport::default() };
        let r = Report { schema: SCHEMA.into(), functions: vec![f], ..Report::default() };
        let row = text(&r).lines().find(|l| l.starts_with("app::tiny")).unwrap_or_default().to_string();
        assert_eq!(row.matches("<47ns").count(), 2, "min and p50: {row}");
        assert!(!row.contains(" 0ns") && !row.contains(" 4ns") && row.contains("900ns"), "{row}");
        assert!(markdown(&r).contains("| <47ns |"), "{}", markdown(&r));
    }

    #[test]
    fn the_syscall_table_ranks_syscalls_inside_traced_functions_first() {
        use crate::{model::SyscallUse, output::report::SyscallReport};
        let sys = |name: &str, total_ns| SyscallReport { name: name.into(), total_ns, ..SyscallReport::default() };
        let mut f = function("app::send", 10, 1_000);
        f.attribution.syscalls = vec![SyscallUse { name: "sendto".into(), count: 10, total_ns: 40_000 }];
        let r = Report {
            schema: SCHEMA.into(),
            functions: vec![f],
            syscalls: vec![sys("futex", 9_000_000_000), sys("recvfrom", 5_000_000_000), sys("sendto", 50_000)],
            ..Report::default()
        };
        let text = text(&r);
        let order: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("SYSCALL"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(order, ["sendto", "futex", "recvfrom"], "{text}");
    }

    #[test]
    fn syscall_percentiles_never_exceed_the_exact_max() {
        // Regression: a syscall's p50 (a bucket midpoint) above its exact max_ns, JSON included.
        let mut session = Session::new(vec![FuncInfo::default()], 10);
        session.push(Sample {
            at_ns: 1_000_000_000,
            syscalls: vec![SyscallSample {
                nr: 202,
                count: 10,
                completed: 10,
                total_ns: 10_250,
                max_ns: 1_030,
                hist: BucketHist { buckets: vec![Bucket { low_ns: 1_024, high_ns: 1_055, count: 10 }] },
                ..SyscallSample::default()
            }],
            ..Sample::default()
        });
        let r = Report::build(&session, &RunInfo::default());
        let v: serde_json::Value = serde_json::from_slice(&json(&r)).unwrap_or_default();
        let s = &v["syscalls"][0];
        let max = s["max_ns"].as_u64().unwrap_or(0);
        assert_eq!(max, 1_030);
        for k in ["min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns"] {
            assert!(s[k].as_u64().is_some_and(|p| p <= max), "{k} above max_ns: {s}");
        }
    }
}

mod numbered_snapshot_tests {
    use super::super::*;

    #[test]
    fn the_e_key_writes_numbered_snapshots_and_never_the_export() {
        // Regression: `e` with --export wrote the export file, which the exit then overwrote;
        // without --export it wrote nothing at all.
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let export = dir.path().join("run.json");
        fs::write(&export, "the final export").unwrap_or_else(|e| panic!("{e}"));
        let stem = numbered_snapshot_stem(Some(&export), 42);
        let r = Report { schema: SCHEMA.into(), duration_ns: 7, ..Report::default() };
        let first = write_numbered_snapshot(&stem, &r).unwrap_or_else(|e| panic!("{e}"));
        let second = write_numbered_snapshot(&stem, &r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, dir.path().join("run.snapshot-1.json"));
        assert_eq!(second, dir.path().join("run.snapshot-2.json"));
        assert_eq!(read_report(&second).unwrap_or_else(|e| panic!("{e}")).duration_ns, 7);
        assert_eq!(fs::read_to_string(&export).unwrap_or_default(), "the final export", "export untouched");
        // A name taken by something else (a symlink planted there) is skipped, never followed.
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("run.snapshot-3.json"))
            .unwrap_or_else(|e| panic!("{e}"));
        let fourth = write_numbered_snapshot(&stem, &r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fourth, dir.path().join("run.snapshot-4.json"));
        assert_eq!(numbered_snapshot_stem(None, 42), Path::new("perf-user-42"));
    }
}
