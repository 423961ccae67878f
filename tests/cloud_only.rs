//! The cloud-only build (`--no-default-features`, no DuckDB): the local commands refuse with the way
//! to the full build, and everything the cloud target needs is still there.

use crate::common::{flixops, output};

#[test]
fn the_local_commands_say_this_build_has_no_duckdb_and_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["run", "--demo"][..], &["transform"], &["report"]] {
        std::fs::write(dir.path().join("flixops.toml"), "[project]\nname = \"t\"\n[env.dev]\ntarget = \"local\"\n")
            .unwrap();
        let (code, _, stderr) = output(flixops(dir.path()).args(args));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("built without the local target (no DuckDB") && stderr.contains("install the full build"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!dir.path().join(".flixops/lake").exists(), "run refused before extracting anything");

    let (code, stdout, stderr) = output(flixops(dir.path()).args(["doctor", "-o", "json"]));
    assert_eq!(code, 1, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let warehouse = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "warehouse").unwrap();
    assert_eq!(warehouse["status"], "fail", "{report}");
    assert!(warehouse["fix"].as_str().unwrap().contains("install the full build"), "{report}");

    // The canary writes nothing it could not load, and says how to get a build that can.
    let (code, stdout, stderr) = output(flixops(dir.path()).args(["doctor", "--canary", "-o", "json"]));
    assert_eq!(code, 1, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let canary = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "canary").unwrap();
    assert_eq!(canary["status"], "fail", "{report}");
    assert!(canary["detail"].as_str().unwrap().contains("this build has no DuckDB"), "{report}");
    assert!(canary["fix"].as_str().unwrap().contains("install the full build"), "{report}");
    assert!(!dir.path().join(".flixops/lake").exists(), "no canary file written");
}
