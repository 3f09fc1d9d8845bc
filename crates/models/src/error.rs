//! Errors of the model front-end. Every message is one line naming the problem and the fix.

use bottleneck_core::CoreError;
use thiserror::Error;

/// Why a model could not be resolved or parsed.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum ModelError {
    /// The text is not JSON.
    #[error(
        "config.json of '{name}' is not valid JSON at line {line}, column {column} ({message}): fix the syntax there"
    )]
    Json {
        name: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The JSON is not an object.
    #[error(
        "config.json of '{name}' must hold a JSON object ({{...}}) at the top level, not {found}"
    )]
    NotAnObject { name: String, found: String },
    /// A known `model_type` lacks fields its family needs.
    #[error("config.json of '{name}' (model_type '{model_type}') lacks {}: add them to the file", .fields.join(", "))]
    MissingFields {
        name: String,
        model_type: String,
        fields: Vec<String>,
    },
    /// An unknown (or absent) `model_type` without the fields the generic decoder path needs.
    #[error(
        "config.json of '{name}' has model_type '{model_type}', which is not a known family, and lacks {} that the generic decoder path needs: add them (a llama-style decoder is then assumed)", .fields.join(", ")
    )]
    UnknownModelType {
        name: String,
        model_type: String,
        fields: Vec<String>,
    },
    /// A field holds a value of the wrong type or range.
    #[error("config.json of '{name}': `{field}` {problem}")]
    BadField {
        name: String,
        field: String,
        problem: String,
    },
    /// Sizes that multiply out to more parameters than any real model has.
    #[error(
        "config.json of '{name}': the sizes imply about {params:.2e} parameters, beyond 10^15: check hidden_size, intermediate_size, num_hidden_layers, the expert counts and vocab_size"
    )]
    Implausible { name: String, params: f64 },
    /// A name that is neither a built-in model nor a file.
    #[error(
        "unknown model '{spec}': did you mean {}? (`bottleneck models` lists the catalog; a path to a config.json or a folder holding one also works)", .suggestions.join(", ")
    )]
    UnknownModel {
        spec: String,
        suggestions: Vec<String>,
    },
    /// A folder without a `config.json`.
    #[error(
        "{path} holds no config.json: pass the config.json itself or the folder that holds it"
    )]
    NoConfig { path: String },
    /// A file that could not be read.
    #[error("cannot read {path} ({message}): pass a readable config.json")]
    Io { path: String, message: String },
    /// The parsed architecture breaks an invariant of the model (e.g. heads not a multiple of
    /// KV heads).
    #[error(transparent)]
    Invalid(#[from] CoreError),
}
