//! Tera templates that write Typst markup. Autoescape is on for every template (their
//! names end in `.typ`) with [`gco_pdf::escape::markup`] as the escape function, so every
//! `{{ value }}` prints as text; an undefined variable is an error that names it.

use std::path::Path;

use crate::error::{Context, Result, failure};
use serde::Serialize;
use tera::Tera;

/// The templates shipped in the binary (`templates/` in the repository).
const BUILTIN: [(&str, &str); 3] = [
    ("common.typ", include_str!("../../templates/common.typ")),
    (
        "csrd/report.typ",
        include_str!("../../templates/csrd/report.typ"),
    ),
    (
        "eu-ai-act/report.typ",
        include_str!("../../templates/eu-ai-act/report.typ"),
    ),
];

/// The template set: the built-in one, or a directory with the same file names
/// (`common.typ`, `csrd/report.typ`, `eu-ai-act/report.typ`) to customise wording
/// and layout.
pub struct Templates {
    tera: Tera,
}

impl Templates {
    pub fn builtin() -> Result<Self> {
        Self::from_sources(
            BUILTIN
                .iter()
                .map(|(n, s)| (n.to_string(), s.to_string()))
                .collect(),
        )
    }

    pub fn from_dir(dir: &Path) -> Result<Self> {
        let mut sources = Vec::new();
        for (name, _) in BUILTIN {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "reading template {}: a template directory holds common.typ, \
                     csrd/report.typ and eu-ai-act/report.typ",
                    path.display()
                )
            })?;
            sources.push((name.to_string(), text));
        }
        Self::from_sources(sources)
    }

    fn from_sources(sources: Vec<(String, String)>) -> Result<Self> {
        let mut tera = Tera::default();
        tera.add_raw_templates(sources)
            .map_err(|e| failure!(Render, "{}", chain(&e)))
            .context("parsing the report templates")?;
        tera.autoescape_on(vec![".typ"]);
        tera.set_escape_fn(gco_pdf::escape::markup);
        Ok(Templates { tera })
    }

    /// Renders `name` with `data` (a serialisable context) into Typst markup.
    pub fn render(&self, name: &str, data: &impl Serialize) -> Result<String> {
        let ctx = tera::Context::from_serialize(data)
            .map_err(|e| failure!(Render, "the report data for {name}: {}", chain(&e)))?;
        self.tera
            .render(name, &ctx)
            .map_err(|e| failure!(Render, "template {name}: {}", chain(&e)))
    }
}

/// Tera's error with its causes ("Failed to render ...: Variable `x` not found ...").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

pub use gco_config::finite;
