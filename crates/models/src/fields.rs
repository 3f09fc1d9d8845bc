//! Typed, checked access to the fields of one config.json object.
//!
//! Readers never fail on the spot: a bad value is kept as the first error and a missing required
//! field is added to a list, so one call to [`Fields::finish`] reports every missing field at once.

use serde_json::{Map, Value};

use crate::error::ModelError;

/// The largest integer any size field may hold (2^40): far above any real model, low enough
/// that the products the parameter count forms cannot overflow before the plausibility check.
const MAX_FIELD: u64 = 1 << 40;

/// A config object being read, with its problems and the assumptions made to fill gaps.
pub(crate) struct Fields<'a> {
    pub name: &'a str,
    pub model_type: String,
    obj: &'a Map<String, Value>,
    missing: Vec<String>,
    error: Option<ModelError>,
    pub assumptions: Vec<String>,
}

impl<'a> Fields<'a> {
    pub fn new(name: &'a str, model_type: &str, obj: &'a Map<String, Value>) -> Self {
        Self {
            name,
            model_type: model_type.to_string(),
            obj,
            missing: Vec::new(),
            error: None,
            assumptions: Vec::new(),
        }
    }

    /// The value at `key` (a dotted path into nested objects); `None` when absent or null.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        let mut obj = self.obj;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            let v = obj.get(part)?;
            if parts.peek().is_none() {
                return (!v.is_null()).then_some(v);
            }
            obj = v.as_object()?;
        }
        None
    }

    /// The first of `keys` present (non-null).
    fn first(&self, keys: &[&str]) -> Option<(String, &'a Value)> {
        keys.iter()
            .find_map(|k| self.raw(k).map(|v| ((*k).to_string(), v)))
    }

    fn bad(&mut self, field: &str, problem: String) {
        if self.error.is_none() {
            self.error = Some(ModelError::BadField {
                name: self.name.to_string(),
                field: field.to_string(),
                problem,
            });
        }
    }

    fn integer(&mut self, keys: &[&str], allow_zero: bool) -> Option<u64> {
        let (key, v) = self.first(keys)?;
        let kind = if allow_zero {
            "a non-negative integer"
        } else {
            "a positive integer"
        };
        let got = match v {
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    if u > MAX_FIELD {
                        self.bad(
                            &key,
                            format!("is implausibly large (got {u}, above 2^40): fix the value"),
                        );
                        return None;
                    }
                    if u == 0 && !allow_zero {
                        self.bad(&key, format!("must be {kind} (got 0): set the real size"));
                        return None;
                    }
                    return Some(u);
                }
                match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f > 0.0 && f <= MAX_FIELD as f64 => {
                        return Some(f as u64)
                    }
                    Some(f) if f.fract() == 0.0 && f == 0.0 && allow_zero => return Some(0),
                    _ => n.to_string(),
                }
            }
            Value::String(s) => format!("the string \"{s}\""),
            Value::Bool(b) => b.to_string(),
            Value::Array(_) => "a list".into(),
            Value::Object(_) => "an object".into(),
            Value::Null => unreachable!("raw() drops nulls"),
        };
        self.bad(&key, format!("must be {kind} (got {got}): fix the value"));
        None
    }

    /// A required positive integer; recorded as missing (and read as 1) when absent.
    pub fn size(&mut self, keys: &[&str]) -> u64 {
        if self.first(keys).is_none() {
            self.missing.push(keys[0].to_string());
            return 1;
        }
        self.integer(keys, false).unwrap_or(1)
    }

    /// An optional positive integer.
    pub fn size_opt(&mut self, keys: &[&str]) -> Option<u64> {
        self.integer(keys, false)
    }

    /// A positive integer with a default (noted in the assumptions when `note` is given).
    pub fn size_or(&mut self, keys: &[&str], default: u64, note: Option<&str>) -> u64 {
        if self.first(keys).is_none() {
            if let Some(note) = note {
                self.assumptions
                    .push(format!("{} absent: {default} assumed ({note})", keys[0]));
            }
            return default;
        }
        self.integer(keys, false).unwrap_or(default)
    }

    /// A non-negative integer with a default.
    pub fn count_or(&mut self, keys: &[&str], default: u64) -> u64 {
        if self.first(keys).is_none() {
            return default;
        }
        self.integer(keys, true).unwrap_or(default)
    }

    /// A boolean with a default.
    pub fn flag(&mut self, key: &str, default: bool) -> bool {
        match self.raw(key) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.bad(
                    key,
                    format!("must be true or false (got {other}): fix the value"),
                );
                default
            }
        }
    }

    /// A fraction in (0, 1] (rotary percentages).
    pub fn fraction(&mut self, key: &str) -> Option<f64> {
        let v = self.raw(key)?;
        match v.as_f64() {
            Some(f) if f > 0.0 && f <= 1.0 => Some(f),
            _ => {
                self.bad(
                    key,
                    format!("must be a number in (0, 1] (got {v}): fix the value"),
                );
                None
            }
        }
    }

    /// A string field.
    pub fn string(&mut self, keys: &[&str]) -> Option<&'a str> {
        let (key, v) = self.first(keys)?;
        if let Some(s) = v.as_str() {
            return Some(s);
        }
        self.bad(&key, format!("must be a string (got {v}): fix the value"));
        None
    }

    /// A list of non-negative integers (layer indices).
    pub fn indices(&mut self, key: &str) -> Vec<u64> {
        match self.raw(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let parsed: Option<Vec<u64>> = items.iter().map(Value::as_u64).collect();
                parsed.unwrap_or_else(|| {
                    self.bad(
                        key,
                        "must be a list of layer indices (non-negative integers): fix the list"
                            .into(),
                    );
                    Vec::new()
                })
            }
            Some(other) => {
                self.bad(
                    key,
                    format!("must be a list of layer indices (got {other}): fix the value"),
                );
                Vec::new()
            }
        }
    }

    /// Records a problem found while combining fields.
    pub fn problem(&mut self, field: &str, problem: impl Into<String>) {
        self.bad(field, problem.into());
    }

    /// Notes an assumption.
    pub fn assume(&mut self, text: impl Into<String>) {
        self.assumptions.push(text.into());
    }

    /// The first bad value, else every missing field, else the assumptions.
    pub fn finish(self) -> Result<Vec<String>, ModelError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if !self.missing.is_empty() {
            return Err(ModelError::MissingFields {
                name: self.name.to_string(),
                model_type: self.model_type,
                fields: self.missing,
            });
        }
        Ok(self.assumptions)
    }
}
