//! What gco's library errors share. Each library crate has its own `thiserror` enum
//! with a stable code per failure; [`context_traits!`] gives it the two helpers that
//! `anyhow` users expect, without `anyhow`:
//!
//! - `Context::context` / `with_context` on a `Result` whose error converts into the
//!   crate's error: the error becomes the `source` of the crate's `Context` variant,
//!   so a caller prints the chain ("caused by: ...") and the code stays the source's;
//! - `OrFail::or_fail` / `or_else_fail` on an `Option`: `None` becomes a failure of a
//!   given kind.
//!
//! The crate's error type needs a variant `Context { context: String, source:
//! Box<Self> }` and a constructor `new(kind, message)`. [`fail!`] and [`failure!`]
//! build one from a kind and a message; they name `crate::error::Error` (an alias of
//! the crate's error type) and `crate::error::Kind` at the call site.
//!
//! ```
//! #[derive(Debug, Clone, Copy, PartialEq)]
//! pub enum Kind { Missing }
//! #[derive(Debug)]
//! pub enum MyError {
//!     Failed { kind: Kind, message: String },
//!     Context { context: String, source: Box<MyError> },
//!     Io(std::io::Error),
//! }
//! impl MyError {
//!     pub fn new(kind: Kind, message: impl std::fmt::Display) -> Self {
//!         MyError::Failed { kind, message: message.to_string() }
//!     }
//! }
//! impl From<std::io::Error> for MyError {
//!     fn from(e: std::io::Error) -> Self { MyError::Io(e) }
//! }
//! gco_error::context_traits!(MyError, Kind);
//!
//! let e = std::fs::read("/nonexistent/gco").context("reading the config").unwrap_err();
//! assert!(matches!(e, MyError::Context { ref context, .. } if context == "reading the config"));
//! let e = None::<u8>.or_fail(Kind::Missing, "no run").unwrap_err();
//! assert!(matches!(e, MyError::Failed { kind: Kind::Missing, .. }));
//! ```

/// Generates `Context` (on results) and `OrFail` (on options) for `$error`, whose
/// failures have kinds of type `$kind`. See the crate documentation.
#[macro_export]
macro_rules! context_traits {
    ($error:ident, $kind:ty) => {
        /// `context` / `with_context` on results: the error becomes the source of a
        /// `Context` error that says what was being done.
        pub trait Context<T> {
            fn context(self, context: impl ::std::fmt::Display)
            -> ::std::result::Result<T, $error>;
            fn with_context<C: ::std::fmt::Display>(
                self,
                context: impl FnOnce() -> C,
            ) -> ::std::result::Result<T, $error>;
        }

        impl<T, E: Into<$error>> Context<T> for ::std::result::Result<T, E> {
            fn context(
                self,
                context: impl ::std::fmt::Display,
            ) -> ::std::result::Result<T, $error> {
                self.map_err(|e| $error::Context {
                    context: context.to_string(),
                    source: Box::new(e.into()),
                })
            }
            fn with_context<C: ::std::fmt::Display>(
                self,
                context: impl FnOnce() -> C,
            ) -> ::std::result::Result<T, $error> {
                self.map_err(|e| $error::Context {
                    context: context().to_string(),
                    source: Box::new(e.into()),
                })
            }
        }

        /// A missing value as a failure of a kind.
        pub trait OrFail<T> {
            fn or_fail(
                self,
                kind: $kind,
                message: impl ::std::fmt::Display,
            ) -> ::std::result::Result<T, $error>;
            fn or_else_fail<C: ::std::fmt::Display>(
                self,
                kind: $kind,
                message: impl FnOnce() -> C,
            ) -> ::std::result::Result<T, $error>;
        }

        impl<T> OrFail<T> for Option<T> {
            fn or_fail(
                self,
                kind: $kind,
                message: impl ::std::fmt::Display,
            ) -> ::std::result::Result<T, $error> {
                self.ok_or_else(|| $error::new(kind, message))
            }
            fn or_else_fail<C: ::std::fmt::Display>(
                self,
                kind: $kind,
                message: impl FnOnce() -> C,
            ) -> ::std::result::Result<T, $error> {
                self.ok_or_else(|| $error::new(kind, message()))
            }
        }
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
