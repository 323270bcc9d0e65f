//! The embedded Typst compiler: an in-memory world (the rendered markup, the data
//! files it reads and attaches, the fonts bundled in typst-assets; no system fonts, no
//! file system, no network) and PDF/A-3b export dated from the run's as-of time; and
//! [`escape`], which makes any value from data print as text in that markup.
//!
//! A crate of its own (not part of gco-report) so that the escapers and the renderer
//! can be fuzzed together without building the emissions pipeline (`fuzz/`).

pub mod escape;

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Timelike, Utc};
use typst::diag::{FileError, FileResult, Severity, SourceDiagnostic};
use typst::foundations::{Bytes, Datetime, Duration, Smart};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World, WorldExt};
use typst_layout::PagedDocument;
use typst_pdf::{PdfOptions, PdfStandard, PdfStandards, Timestamp};

/// Why a document did not become a PDF. Messages carry Typst's diagnostics with the
/// line of the markup they point at.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// A data file's name is not a path Typst accepts.
    #[error("bad file name {0:?}")]
    FileName(String),
    /// The document date is outside what PDF metadata can hold.
    #[error("{0} is not a date Typst can write")]
    Date(DateTime<Utc>),
    /// The markup does not compile (a template error: data is escaped).
    #[error("the report's Typst markup does not compile:\n{0}")]
    Compile(String),
    /// The compiled document could not be written as PDF/A-3b.
    #[error("PDF export failed:\n{0}")]
    Export(String),
}

pub type Result<T, E = PdfError> = std::result::Result<T, E>;

impl PdfError {
    /// The stable machine-readable code (docs/errors.md).
    pub fn code(&self) -> &'static str {
        match self {
            PdfError::FileName(_) => "pdf_file_name",
            PdfError::Date(_) => "pdf_date",
            PdfError::Compile(_) => "pdf_compile",
            PdfError::Export(_) => "pdf_export",
        }
    }
}

/// Fonts from typst-assets (Libertinus Serif, New Computer Modern, DejaVu Sans Mono),
/// parsed once per process.
struct Fonts {
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
}

static FONTS: LazyLock<Fonts> = LazyLock::new(|| {
    let fonts: Vec<Font> = typst_assets::fonts()
        .flat_map(|data| Font::iter(Bytes::new(data)))
        .collect();
    Fonts {
        book: LazyHash::new(FontBook::from_fonts(&fonts)),
        fonts,
    }
});

static LIBRARY: LazyLock<LazyHash<Library>> =
    LazyLock::new(|| LazyHash::new(<Library as LibraryExt>::default()));

/// One document to compile: `main.typ` and the files it may read (by their path from
/// the project root, e.g. `data/monthly.json`).
pub struct Document {
    pub main: String,
    pub files: BTreeMap<String, Vec<u8>>,
    /// The document date (the run's as-of time): PDF metadata and `datetime.today()`.
    pub date: DateTime<Utc>,
    /// A stable identifier of the document (PDF trailer ID), e.g. `csrd/2026`.
    pub ident: String,
}

struct MemoryWorld {
    main: Source,
    files: HashMap<FileId, Bytes>,
    today: Datetime,
}

fn file_id(path: &str) -> Result<FileId> {
    let vpath = VirtualPath::new(path).map_err(|_| PdfError::FileName(path.to_string()))?;
    Ok(RootedPath::new(VirtualRoot::Project, vpath).intern())
}

impl World for MemoryWorld {
    fn library(&self) -> &LazyHash<Library> {
        &LIBRARY
    }
    fn book(&self) -> &LazyHash<FontBook> {
        &FONTS.book
    }
    fn main(&self) -> FileId {
        self.main.id()
    }
    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            return Ok(self.main.clone());
        }
        // Only the main file is markup; data files are read with `json`/`csv`/`read`.
        Err(FileError::NotSource)
    }
    fn file(&self, id: FileId) -> FileResult<Bytes> {
        self.files
            .get(&id)
            .cloned()
            .ok_or_else(|| FileError::NotFound(id.get().vpath().get_without_slash().into()))
    }
    fn font(&self, index: usize) -> Option<Font> {
        FONTS.fonts.get(index).cloned()
    }
    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        Some(self.today)
    }
}

fn datetime(t: DateTime<Utc>) -> Result<Datetime> {
    Datetime::from_ymd_hms(
        t.year(),
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
    )
    .ok_or(PdfError::Date(t))
}

/// Formats Typst diagnostics with the line they point at.
fn describe(world: &MemoryWorld, diags: &[SourceDiagnostic]) -> String {
    let mut out = Vec::new();
    for d in diags {
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut line = format!("{kind}: {}", d.message);
        if let Some(range) = world.range(d.span)
            && let Some(id) = d.span.id()
            && let Ok(source) = world.source(id)
        {
            let text = source.text();
            let start = text[..range.start].rfind('\n').map_or(0, |i| i + 1);
            let end = text[range.start..]
                .find('\n')
                .map_or(text.len(), |i| range.start + i);
            let lineno = text[..range.start].matches('\n').count() + 1;
            line.push_str(&format!(
                "\n  at main.typ:{lineno}: {}",
                text[start..end].trim()
            ));
        }
        for hint in &d.hints {
            line.push_str(&format!("\n  hint: {}", hint.v));
        }
        out.push(line);
    }
    out.join("\n")
}

/// Compiles the document to PDF/A-3b. The same document gives the same bytes.
pub fn pdf(doc: Document) -> Result<Vec<u8>> {
    let main = Source::new(file_id("main.typ")?, doc.main);
    let mut files = HashMap::new();
    for (path, bytes) in doc.files {
        files.insert(file_id(&path)?, Bytes::new(bytes));
    }
    let today = datetime(doc.date)?;
    let world = MemoryWorld { main, files, today };
    let warned = typst::compile::<PagedDocument>(&world);
    let document = match warned.output {
        Ok(d) => d,
        Err(errors) => return Err(PdfError::Compile(describe(&world, &errors))),
    };
    let standards = PdfStandards::new(&[PdfStandard::A_3b])
        .map_err(|e| PdfError::Export(format!("PDF/A-3b: {}", e.message())))?;
    let options = PdfOptions {
        ident: Smart::Custom(doc.ident),
        creator: Smart::Custom(Some(format!("gco {}", env!("CARGO_PKG_VERSION")))),
        timestamp: Some(Timestamp::new_utc(today)),
        standards,
        ..PdfOptions::default()
    };
    typst_pdf::pdf(&document, &options)
        .map_err(|errors| PdfError::Export(describe(&world, &errors)))
}

/// Whether some bundled font has a glyph for `c` (Typst falls back across them). A
/// character none has would make the PDF/A export fail: [`escape::display`]
/// shows it as its code point instead.
pub fn renderable(c: char) -> bool {
    c.is_ascii_graphic()
        || c == ' '
        || FONTS
            .fonts
            .iter()
            .any(|f| f.info().coverage.contains(c as u32))
}

/// For tests and benchmarks: the number of bundled font faces.
pub fn font_count() -> usize {
    FONTS.fonts.len()
}

/// Drops Typst's memoised compilation results (benchmarks time cold renders with it;
/// a `gco report` process renders each document once).
pub fn evict_cache() {
    ::typst::comemo::evict(0);
}
