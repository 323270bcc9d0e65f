//! Output helpers: JSON on stdout, progress bars on stderr.

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A progress bar on stderr; hidden when stderr is not a terminal or `quiet`.
pub fn progress(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Kilowatt-hours from millijoules, for display (sums stay in integer mJ).
pub fn kwh(mj: i64) -> String {
    format!("{:.3}", gco_ledger::Millijoules(mj).as_kwh_f64())
}

/// Text from data (model ids, messages naming objects) for a terminal: control
/// characters are shown escaped (`\u{1b}`), so a value cannot move the cursor,
/// recolour the screen or hide a line.
pub fn term(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_never_reach_the_terminal_raw() {
        assert_eq!(super::term("llama-3"), "llama-3");
        assert_eq!(super::term("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\u{a}");
    }
}
