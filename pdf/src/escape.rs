//! Escaping values for Typst markup. Every `{{ value }}` in a report template passes
//! through [`markup`] (Tera's autoescape with this function), so data prints as text:
//! a model named `#read("x")` or `*bold*` cannot run code or change the formatting.

/// Values longer than this many characters are cut for display (with an ellipsis);
/// the CSVs beside the report carry them whole.
pub const MAX_DISPLAY_CHARS: usize = 200;

/// A value as the PDF shows it: control characters (and line/paragraph separators)
/// become spaces, a character no bundled font can draw becomes its code point
/// (`U+1F600`), and a value over [`MAX_DISPLAY_CHARS`] is cut with an ellipsis. Any
/// input renders; nothing here fails.
pub fn display(input: &str) -> String {
    let mut out = String::with_capacity(input.len().min(4 * MAX_DISPLAY_CHARS));
    for (n, c) in input.chars().enumerate() {
        if n == MAX_DISPLAY_CHARS {
            out.push(if crate::renderable('\u{2026}') {
                '\u{2026}'
            } else {
                '~'
            });
            break;
        }
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.push(' ');
        } else if crate::renderable(c) {
            out.push(c);
        } else {
            out.push_str(&format!("U+{:04X}", c as u32));
        }
    }
    out
}

/// Every string in a JSON value (the charts' data) passed through [`display`].
pub fn display_json(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(display(s)),
        Value::Array(a) => Value::Array(a.iter().map(display_json).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (display(k), display_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Escapes a value for Typst markup (including inside `[...]` content blocks), after
/// [`display`].
///
/// Every ASCII punctuation character gets a backslash: in Typst markup `\c` is the
/// character itself for any symbol, which covers code (`#`), markup (`*`, `_`, `=`,
/// `-`, `+`, `/`, `<`, `>`, `@`, `` ` ``, `$`, `[`, `]`), shorthands (`--`, `...`,
/// `~`, `'`, `"`) and automatic links (`https:`). Line breaks and other control
/// characters become spaces (a value never starts a new paragraph or heading);
/// letters, digits, spaces and non-ASCII characters are kept.
pub fn markup(input: &str) -> String {
    let input = display(input);
    let mut out = String::with_capacity(input.len() + input.len() / 4);
    for c in input.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
            out.push(c);
        } else if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// A Typst string literal (for code positions such as `#let name = ...`).
pub fn string_literal(input: &str) -> String {
    let input = display(input);
    let mut out = String::with_capacity(input.len() + 2);
    out.push('"');
    for c in input.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_escapes_code_and_formatting() {
        assert_eq!(markup("#read(\"x\")"), "\\#read\\(\\\"x\\\"\\)");
        assert_eq!(markup("*bold* _it_"), "\\*bold\\* \\_it\\_");
        assert_eq!(markup("a\nb\r= c"), "a b \\= c");
        assert_eq!(markup("Llama-3.1 8B"), "Llama\\-3\\.1 8B");
        // No bundled font draws these: shown as code points, never a failed export.
        assert_eq!(markup("Zürich 東京"), "Zürich U\\+6771U\\+4EAC");
        assert_eq!(markup("\\"), "\\\\");
    }

    #[test]
    fn string_literal_escapes_quotes_and_controls() {
        // Controls are spaces before they reach Typst.
        assert_eq!(string_literal("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c d \"");
    }

    #[test]
    fn display_renders_any_input() {
        assert_eq!(display("m\u{7}\u{0}x\u{2028}"), "m  x ");
        assert_eq!(display("🙂 llama"), "U+1F642 llama");
        let long = "a".repeat(40_000);
        let shown = display(&long);
        assert_eq!(shown.chars().count(), MAX_DISPLAY_CHARS + 1);
        assert!(shown.starts_with(&"a".repeat(MAX_DISPLAY_CHARS)));
        assert_eq!(
            display_json(&serde_json::json!({"l\u{1}": ["東", 1]})),
            serde_json::json!({"l ": ["U+6771", 1]})
        );
    }
}
