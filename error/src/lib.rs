//! What gco's library errors share: [`Kind`], the kinds of failure with their stable
//! codes, and [`errors!`], which declares a library crate's error type: a
//! `thiserror` enum `ErrorRepr` with
//!
//! - `Failed { kind, message }`: a failure the crate itself raised,
//! - `Context { context, source }`: what was being done when `source` failed (the
//!   code stays the source's, and callers print the chain: "caused by: ..."),
//! - one transparent variant per library error it wraps, each with its code,
//!
//! behind one pointer (the crate's error type boxes it: a hot loop's `Result` stays
//! two words, as with `anyhow`);
//!
//! and, in the crate's `error` module, `Result`, the `anyhow`-style helpers
//! `Context::context` / `with_context` on results and `OrFail::or_fail` /
//! `or_else_fail` on options, and [`fail!`] / [`failure!`] to raise a kind with a
//! formatted message. No library crate needs `anyhow`.
//!
//! ```
//! mod error {
//!     gco_error::errors! {
//!         /// Errors raised by this crate.
//!         pub enum MyError {
//!             Io(e: std::io::Error) => "io",
//!         }
//!     }
//! }
//! use error::{Context, Kind, MyError, OrFail};
//!
//! let e = std::fs::read("/nonexistent/gco").context("reading the config").unwrap_err();
//! assert_eq!((e.to_string().as_str(), e.code()), ("reading the config", "io"));
//! assert_eq!(std::mem::size_of::<MyError>(), std::mem::size_of::<usize>());
//! let e = None::<u8>.or_fail(Kind::NotFound, "no run").unwrap_err();
//! assert_eq!((e.code(), e.kind()), ("not_found", Some(Kind::NotFound)));
//! ```

/// What kind of failure a gco library raised, with its stable code: one registry for
/// every crate, so a code means one thing wherever it comes from (docs/errors.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The request cannot be done as asked (a flag, a period, a key the issuer lacks,
    /// another node's spool).
    Usage,
    /// What was asked for is not in the store (no run, no credential).
    NotFound,
    /// Stored objects disagree with each other or changed under the command; rerun.
    Inconsistent,
    /// A figure does not fit its integer type.
    Overflow,
    /// The ledger did not verify and the policy stops the run.
    Unverified,
    /// A credential's evidence does not hold against the ledger.
    Evidence,
    /// A stored object already records something else.
    Conflict,
    /// A remote service (a time-stamping authority) failed or refused.
    Remote,
    /// The output path already holds something else.
    Exists,
    /// A package or its signature does not check.
    Invalid,
    /// A template or its data does not render.
    Render,
    /// A node's spool on disk is damaged or not a gco spool.
    Spool,
    /// A node's spool and its chain are out of step.
    Chain,
    /// The TPM failed or answered something unusable.
    Tpm,
    /// An address could not be bound.
    Bind,
    /// A broken invariant of gco itself (a thread that stopped, a lost row).
    Internal,
}

impl Kind {
    /// The stable machine-readable code.
    ///
    /// ```
    /// assert_eq!(gco_error::Kind::NotFound.code(), "not_found");
    /// ```
    pub fn code(self) -> &'static str {
        match self {
            Kind::Usage => "usage",
            Kind::NotFound => "not_found",
            Kind::Inconsistent => "inconsistent",
            Kind::Overflow => "overflow",
            Kind::Unverified => "unverified",
            Kind::Evidence => "evidence",
            Kind::Conflict => "conflict",
            Kind::Remote => "remote",
            Kind::Exists => "exists",
            Kind::Invalid => "invalid",
            Kind::Render => "render",
            Kind::Spool => "spool",
            Kind::Chain => "chain",
            Kind::Tpm => "tpm",
            Kind::Bind => "bind",
            Kind::Internal => "internal",
        }
    }
}

/// Declares a crate's error enum and its helpers; see the crate docs.
/// Invoke it in the crate's `error` module ([`fail!`] names `crate::error`).
#[macro_export]
macro_rules! errors {
    (
        $(#[$emeta:meta])*
        pub enum $error:ident {
            $( $(#[$vmeta:meta])* $var:ident($bind:ident : $ty:ty) => $code:expr, )*
        }
    ) => {
        /// The kinds of failure, shared by gco's libraries.
        pub use $crate::Kind;

        /// What an error is: the crate's failure, a context, or a wrapped error.
        #[derive(Debug, thiserror::Error)]
        pub enum ErrorRepr {
            /// A failure this crate raised.
            #[error("{message}")]
            Failed { kind: Kind, message: String },
            /// What was being done when `source` failed.
            #[error("{context}")]
            Context {
                context: String,
                #[source]
                source: $error,
            },
            $(
                $(#[$vmeta])*
                #[error(transparent)]
                $var($ty),
            )*
        }

        $(#[$emeta])*
        ///
        /// One pointer wide (the error is boxed), so a `Result` of it costs what an
        /// `anyhow::Result` does on the paths that do not fail.
        pub struct $error(Box<ErrorRepr>);

        impl ::std::fmt::Debug for $error {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl ::std::fmt::Display for $error {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&*self.0, f)
            }
        }

        impl ::std::error::Error for $error {
            fn source(&self) -> Option<&(dyn ::std::error::Error + 'static)> {
                ::std::error::Error::source(&*self.0)
            }
        }

        $(
            $(#[$vmeta])*
            impl From<$ty> for $error {
                fn from(e: $ty) -> Self {
                    $error(Box::new(ErrorRepr::$var(e)))
                }
            }
        )*

        /// Result alias of the crate.
        pub type Result<T, E = $error> = ::std::result::Result<T, E>;

        impl $error {
            /// A failure of `kind` with its message.
            pub fn new(kind: Kind, message: impl ::std::fmt::Display) -> Self {
                $error(Box::new(ErrorRepr::Failed {
                    kind,
                    message: message.to_string(),
                }))
            }

            /// `source`, with what was being done when it failed.
            pub fn context(context: impl ::std::fmt::Display, source: $error) -> Self {
                $error(Box::new(ErrorRepr::Context {
                    context: context.to_string(),
                    source,
                }))
            }

            /// What the error is.
            pub fn repr(&self) -> &ErrorRepr {
                &self.0
            }

            /// The stable code: the kind of the innermost error this crate raised,
            /// else the code of the library error underneath.
            pub fn code(&self) -> &'static str {
                match &*self.0 {
                    ErrorRepr::Failed { kind, .. } => kind.code(),
                    ErrorRepr::Context { source, .. } => source.code(),
                    $( $(#[$vmeta])* ErrorRepr::$var($bind) => {
                        let _ = &$bind;
                        $code
                    } )*
                }
            }

            /// The kind, where this crate raised the error itself.
            pub fn kind(&self) -> Option<Kind> {
                match &*self.0 {
                    ErrorRepr::Failed { kind, .. } => Some(*kind),
                    ErrorRepr::Context { source, .. } => source.kind(),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }

        /// `context` / `with_context` on results: the error becomes the source of a
        /// `Context` error that says what was being done.
        pub trait Context<T> {
            fn context(self, context: impl ::std::fmt::Display) -> Result<T>;
            fn with_context<C: ::std::fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T>;
        }

        impl<T, E: Into<$error>> Context<T> for ::std::result::Result<T, E> {
            fn context(self, context: impl ::std::fmt::Display) -> Result<T> {
                self.map_err(|e| $error::context(context, e.into()))
            }
            fn with_context<C: ::std::fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
                self.map_err(|e| $error::context(context(), e.into()))
            }
        }

        /// A missing value as a failure of a kind.
        pub trait OrFail<T> {
            fn or_fail(self, kind: Kind, message: impl ::std::fmt::Display) -> Result<T>;
            fn or_else_fail<C: ::std::fmt::Display>(
                self,
                kind: Kind,
                message: impl FnOnce() -> C,
            ) -> Result<T>;
        }

        impl<T> OrFail<T> for Option<T> {
            fn or_fail(self, kind: Kind, message: impl ::std::fmt::Display) -> Result<T> {
                self.ok_or_else(|| $error::new(kind, message))
            }
            fn or_else_fail<C: ::std::fmt::Display>(
                self,
                kind: Kind,
                message: impl FnOnce() -> C,
            ) -> Result<T> {
                self.ok_or_else(|| $error::new(kind, message()))
            }
        }

        /// The crate's error type, as [`fail!`](gco_error::fail) names it.
        #[allow(dead_code)]
        pub(crate) type Error = $error;
        #[allow(unused_imports)]
        pub(crate) use $crate::{fail, failure};
    };
}

/// `fail!(Kind, "format", args...)`: returns `Err` of a failure of that [`Kind`] of the
/// calling crate's `crate::error::Error`.
#[macro_export]
#[allow(clippy::crate_in_macro_def)] // `crate` is the caller's on purpose
macro_rules! fail {
    ($kind:ident, $($arg:tt)+) => {
        return Err(crate::error::Error::new($crate::Kind::$kind, format!($($arg)+)))
    };
}

/// `failure!(Kind, "format", args...)`: a failure of that kind of the calling crate's
/// `crate::error::Error`, as a value.
#[macro_export]
#[allow(clippy::crate_in_macro_def)] // `crate` is the caller's on purpose
macro_rules! failure {
    ($kind:ident, $($arg:tt)+) => {
        crate::error::Error::new($crate::Kind::$kind, format!($($arg)+))
    };
}
