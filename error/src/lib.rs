//! What gco's library errors share. Each library crate declares its error type with
//! [`errors!`]: a `Kind` enum (each kind with a stable code), and a `thiserror` enum
//! with
//!
//! - `Failed { kind, message }`: a failure the crate itself raised,
//! - `Context { context, source }`: what was being done when `source` failed (the
//!   code stays the source's, and callers print the chain: "caused by: ..."),
//! - one transparent variant per library error it wraps, each with its code;
//!
//! and, in the crate's `error` module, `Result`, the `anyhow`-style helpers
//! `Context::context` / `with_context` on results and `OrFail::or_fail` /
//! `or_else_fail` on options, and [`fail!`] / [`failure!`] to raise a kind with a
//! formatted message. No library crate needs `anyhow`.
//!
//! ```
//! mod error {
//!     gco_error::errors! {
//!         /// What kind of failure.
//!         kinds Kind {
//!             /// Nothing to read.
//!             Missing = "missing",
//!         }
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
//! let e = None::<u8>.or_fail(Kind::Missing, "no run").unwrap_err();
//! assert_eq!((e.code(), e.kind()), ("missing", Some(Kind::Missing)));
//! ```

/// Declares a crate's `Kind`, its error enum and the helpers; see the crate docs.
/// Invoke it in the crate's `error` module ([`fail!`] names `crate::error`).
#[macro_export]
macro_rules! errors {
    (
        $(#[$kmeta:meta])*
        kinds $kind:ident {
            $( $(#[$kvmeta:meta])* $kvar:ident = $kcode:literal, )+
        }
        $(#[$emeta:meta])*
        pub enum $error:ident {
            $( $(#[$vmeta:meta])* $var:ident($bind:ident : $ty:ty) => $code:expr, )*
        }
    ) => {
        $(#[$kmeta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $kind {
            $( $(#[$kvmeta])* $kvar, )+
        }

        impl $kind {
            /// The stable machine-readable code (docs/errors.md).
            pub fn code(self) -> &'static str {
                match self {
                    $( $kind::$kvar => $kcode, )+
                }
            }
        }

        $(#[$emeta])*
        #[derive(Debug, thiserror::Error)]
        pub enum $error {
            /// A failure this crate raised.
            #[error("{message}")]
            Failed { kind: $kind, message: String },
            /// What was being done when `source` failed.
            #[error("{context}")]
            Context {
                context: String,
                #[source]
                source: Box<$error>,
            },
            $(
                $(#[$vmeta])*
                #[error(transparent)]
                $var(#[from] $ty),
            )*
        }

        /// Result alias of the crate.
        pub type Result<T, E = $error> = ::std::result::Result<T, E>;

        impl $error {
            /// A failure of `kind` with its message.
            pub fn new(kind: $kind, message: impl ::std::fmt::Display) -> Self {
                $error::Failed {
                    kind,
                    message: message.to_string(),
                }
            }

            /// The stable code: the kind of the innermost error this crate raised,
            /// else the code of the library error underneath.
            pub fn code(&self) -> &'static str {
                match self {
                    $error::Failed { kind, .. } => kind.code(),
                    $error::Context { source, .. } => source.code(),
                    $( $(#[$vmeta])* $error::$var($bind) => {
                        let _ = &$bind;
                        $code
                    } )*
                }
            }

            /// The kind, where this crate raised the error itself.
            pub fn kind(&self) -> Option<$kind> {
                match self {
                    $error::Failed { kind, .. } => Some(*kind),
                    $error::Context { source, .. } => source.kind(),
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
                self.map_err(|e| $error::Context {
                    context: context.to_string(),
                    source: Box::new(e.into()),
                })
            }
            fn with_context<C: ::std::fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
                self.map_err(|e| $error::Context {
                    context: context().to_string(),
                    source: Box::new(e.into()),
                })
            }
        }

        /// A missing value as a failure of a kind.
        pub trait OrFail<T> {
            fn or_fail(self, kind: $kind, message: impl ::std::fmt::Display) -> Result<T>;
            fn or_else_fail<C: ::std::fmt::Display>(
                self,
                kind: $kind,
                message: impl FnOnce() -> C,
            ) -> Result<T>;
        }

        impl<T> OrFail<T> for Option<T> {
            fn or_fail(self, kind: $kind, message: impl ::std::fmt::Display) -> Result<T> {
                self.ok_or_else(|| $error::new(kind, message))
            }
            fn or_else_fail<C: ::std::fmt::Display>(
                self,
                kind: $kind,
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

/// `fail!(Kind, "format", args...)`: returns `Err` of a failure of that kind of the
/// calling crate's `crate::error::Error`.
#[macro_export]
#[allow(clippy::crate_in_macro_def)] // `crate` is the caller's on purpose
macro_rules! fail {
    ($kind:ident, $($arg:tt)+) => {
        return Err(crate::error::Error::new(crate::error::Kind::$kind, format!($($arg)+)))
    };
}

/// `failure!(Kind, "format", args...)`: a failure of that kind of the calling crate's
/// `crate::error::Error`, as a value.
#[macro_export]
#[allow(clippy::crate_in_macro_def)] // `crate` is the caller's on purpose
macro_rules! failure {
    ($kind:ident, $($arg:tt)+) => {
        crate::error::Error::new(crate::error::Kind::$kind, format!($($arg)+))
    };
}
