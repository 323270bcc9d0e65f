//! What the import targets share: `gco ledger import` of arbitrary bytes in one format.

/// Imports `data` as a file with extension `ext`: never a panic, every row accepted
/// or quarantined (rows = accepted + quarantined), every accepted record valid.
pub fn import(ext: &str, data: &[u8]) {
    quiet_panics();
    let policy = gco_ledger::import::ImportPolicy::new(1_790_000_000_000_000);
    if let Ok(out) = gco_ledger::import::import_bytes(
        std::path::Path::new(&format!("input.{ext}")),
        bytes::Bytes::copy_from_slice(data),
        "n1",
        &policy,
        &Default::default(),
    ) {
        assert_eq!(
            out.rows as usize,
            out.accepted.len() + out.quarantined.len()
        );
        for r in &out.accepted {
            assert!(r.validate().is_ok(), "an accepted row is invalid: {r:?}");
        }
    }
}

/// gco catches the Parquet decoder's own panics (`gco_ledger::guard`): this silences
/// the hook libFuzzer installs, so that only a panic gco lets through (which reaches
/// libfuzzer-sys' catch_unwind and aborts) is a crash.
pub fn quiet_panics() {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

/// The string literals of TOML text (basic `"..."` and literal `'...'`, a naive scan)
/// that could be a secret: at least 8 characters, with a character outside lower-case
/// letters, digits and `_` (so not one of gco's own key or variant names, which error
/// messages may list as expected). No configuration error message may contain one.
pub fn literals(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for quote in ['"', '\''] {
        let mut parts = text.split(quote);
        parts.next();
        while let Some(inside) = parts.next() {
            let looks_secret = inside.chars().count() >= 8
                && !inside.contains('\n')
                && inside
                    .chars()
                    .any(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
            if looks_secret {
                out.push(inside.to_string());
            }
            parts.next(); // the text between this literal and the next
        }
    }
    out
}
