//! The one place the binary turns a failed command into its output: the message and
//! its causes on stderr, and with `--json` one object on stdout with the stable code
//! of the library error underneath (docs/errors.md).

use serde_json::json;

/// The stable code of the outermost library error in `e`'s chain (which names the
/// innermost cause gco classified), or `error` for a failure of the binary itself.
pub fn code(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        macro_rules! coded {
            ($($t:ty),+) => {
                $(if let Some(c) = cause.downcast_ref::<$t>() {
                    return c.code();
                })+
            };
        }
        coded!(
            gco_pipelines::PipelineError,
            gco_report::ReportError,
            gco_collector::CollectorError,
            gco_collector::gpu::GpuError,
            gco_ledger::LedgerError,
            gco_grid_data::GridError,
            gco_config::ConfigError,
            gco_credentials::Error
        );
    }
    "error"
}

/// The message, then each cause that adds something (many library errors already
/// include their source's text).
pub fn messages(e: &anyhow::Error) -> Vec<String> {
    let mut out: Vec<String> = vec![e.to_string()];
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.last().is_some_and(|shown| shown.contains(&text)) {
            out.push(text);
        }
    }
    out
}

/// Prints `e`: `error: ...` and `caused by: ...` lines on stderr; with `json`, also
/// `{"error": {"code", "message", "causes"}}` on stdout.
pub fn report(e: &anyhow::Error, json: bool) {
    let lines = messages(e);
    eprintln!("error: {}", crate::output::term(&lines[0]));
    for cause in &lines[1..] {
        eprintln!("  caused by: {}", crate::output::term(cause));
    }
    if json {
        let out = json!({"error": {
            "code": code(e),
            "message": lines[0],
            "causes": &lines[1..],
        }});
        println!("{out:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_the_library_errors_through_the_binarys_context() {
        let inner = gco_pipelines::PipelineError::new(gco_pipelines::Kind::NotFound, "no run");
        let e = anyhow::Error::from(inner).context("gco vc issue");
        assert_eq!(code(&e), "not_found");
        assert_eq!(messages(&e), ["gco vc issue", "no run"]);
        let busy = gco_ledger::LedgerError::Busy {
            scope: "period 2026-10".into(),
            owner: "host:1".into(),
            until: "2026-10-01T00:00:00Z".into(),
            waited_s: 0,
        };
        let e = gco_report::ReportError::from(gco_pipelines::PipelineError::from(busy));
        assert_eq!(code(&anyhow::Error::from(e)), "busy");
        assert_eq!(code(&anyhow::anyhow!("plain")), "error");
    }
}
