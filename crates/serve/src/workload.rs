//! Requests: arrival processes, length distributions and workload files.
//!
//! Randomness is a ChaCha8 stream seeded from the user's `--seed` (`rand_chacha`, whose output
//! is stable across releases, unlike `StdRng`): stream 0 draws inter-arrival gaps, stream 1
//! prompt lengths, stream 2 output lengths, so changing one distribution leaves the others'
//! draws unchanged.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, LogNormal};
use serde::Deserialize;

use crate::SimError;

/// Nanoseconds per second: event times are integer nanoseconds.
pub const NS: f64 = 1e9;

/// How requests arrive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arrival {
    /// Exponential gaps (a Poisson process) at `rate` requests per second.
    Poisson { rate: f64 },
    /// Gamma-distributed gaps with mean `1/rate` and coefficient of variation `cv`
    /// (`cv = 1` is Poisson, `cv > 1` bursty, `cv < 1` smoother).
    Gamma { rate: f64, cv: f64 },
    /// Evenly spaced arrivals.
    Constant { rate: f64 },
}

impl Arrival {
    /// Parses `poisson`, `gamma:CV` or `constant` at `rate` requests per second.
    pub fn parse(kind: &str, rate: f64) -> Result<Arrival, SimError> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(SimError::Input(format!(
                "rate must be a positive number of requests per second (got {rate})"
            )));
        }
        let lower = kind.trim().to_ascii_lowercase();
        match lower.split_once(':') {
            None if lower == "poisson" => Ok(Arrival::Poisson { rate }),
            None if lower == "constant" => Ok(Arrival::Constant { rate }),
            Some(("gamma", cv)) => {
                let cv: f64 = cv
                    .parse()
                    .map_err(|_| SimError::Input(format!("gamma:CV needs a number, got '{cv}'")))?;
                if !(cv.is_finite() && cv > 0.0 && cv <= 100.0) {
                    return Err(SimError::Input(format!(
                        "gamma burstiness CV must be in (0, 100] (got {cv})"
                    )));
                }
                Ok(Arrival::Gamma { rate, cv })
            }
            _ => Err(SimError::Input(format!(
                "unknown arrival process '{kind}': use poisson, gamma:CV or constant"
            ))),
        }
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        match *self {
            Arrival::Poisson { rate }
            | Arrival::Gamma { rate, .. }
            | Arrival::Constant { rate } => rate,
        }
    }
}

/// A distribution of token counts.
#[derive(Clone, Debug, PartialEq)]
pub enum Lengths {
    /// Always this many tokens.
    Fixed(u64),
    /// Uniform over `lo..=hi`.
    Uniform { lo: u64, hi: u64 },
    /// Log-normal with this mean (tokens) and standard deviation of the log (`sigma`).
    LogNormal { mean: f64, sigma: f64 },
    /// Draws from these observed values with equal weight.
    Empirical(Vec<u64>),
}

impl FromStr for Lengths {
    type Err = SimError;

    /// `512`, `uniform:LO:HI`, `lognormal:MEAN:SIGMA`.
    fn from_str(s: &str) -> Result<Self, SimError> {
        let t = s.trim().to_ascii_lowercase();
        let bad = |why: &str| {
            SimError::Input(format!(
                "length distribution '{s}': {why} (use N, uniform:LO:HI or lognormal:MEAN:SIGMA)"
            ))
        };
        let parts: Vec<&str> = t.split(':').collect();
        match parts.as_slice() {
            [n] => {
                let n: u64 = n.parse().map_err(|_| bad("not a whole number"))?;
                if n == 0 {
                    return Err(bad("must be at least 1 token"));
                }
                Ok(Lengths::Fixed(n))
            }
            ["uniform", lo, hi] => {
                let lo: u64 = lo.parse().map_err(|_| bad("LO is not a whole number"))?;
                let hi: u64 = hi.parse().map_err(|_| bad("HI is not a whole number"))?;
                if lo == 0 || hi < lo {
                    return Err(bad("needs 1 ≤ LO ≤ HI"));
                }
                Ok(Lengths::Uniform { lo, hi })
            }
            ["lognormal", mean, sigma] => {
                let mean: f64 = mean.parse().map_err(|_| bad("MEAN is not a number"))?;
                let sigma: f64 = sigma.parse().map_err(|_| bad("SIGMA is not a number"))?;
                if !(mean.is_finite()
                    && mean >= 1.0
                    && sigma.is_finite()
                    && (0.0..=4.0).contains(&sigma))
                {
                    return Err(bad("needs MEAN ≥ 1 and 0 ≤ SIGMA ≤ 4"));
                }
                Ok(Lengths::LogNormal { mean, sigma })
            }
            _ => Err(bad("unrecognised form")),
        }
    }
}

impl fmt::Display for Lengths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lengths::Fixed(n) => write!(f, "{n}"),
            Lengths::Uniform { lo, hi } => write!(f, "uniform:{lo}:{hi}"),
            Lengths::LogNormal { mean, sigma } => write!(f, "lognormal:{mean}:{sigma}"),
            Lengths::Empirical(v) => write!(f, "empirical({} values)", v.len()),
        }
    }
}

/// A sampler bound to one random stream.
enum Sampler {
    Fixed(u64),
    Uniform(u64, u64),
    LogNormal(LogNormal<f64>),
    Empirical(Vec<u64>),
}

impl Sampler {
    fn new(l: &Lengths) -> Result<Sampler, SimError> {
        Ok(match l {
            Lengths::Fixed(n) => Sampler::Fixed(*n),
            Lengths::Uniform { lo, hi } => Sampler::Uniform(*lo, *hi),
            Lengths::LogNormal { mean, sigma } => {
                // E[X] = exp(mu + sigma²/2).
                let mu = mean.ln() - sigma * sigma / 2.0;
                Sampler::LogNormal(
                    LogNormal::new(mu, *sigma)
                        .map_err(|e| SimError::Input(format!("lognormal: {e}")))?,
                )
            }
            Lengths::Empirical(v) => {
                if v.is_empty() {
                    return Err(SimError::Input("empirical length list is empty".into()));
                }
                Sampler::Empirical(v.clone())
            }
        })
    }

    fn draw(&self, rng: &mut ChaCha8Rng) -> u64 {
        match self {
            Sampler::Fixed(n) => *n,
            Sampler::Uniform(lo, hi) => rng.gen_range(*lo..=*hi),
            Sampler::LogNormal(d) => (d.sample(rng).round() as u64).clamp(1, 1 << 24),
            Sampler::Empirical(v) => v[rng.gen_range(0..v.len())],
        }
    }
}

/// One request as generated or read: arrival time, prompt and output tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestSpec {
    pub arrival_ns: u64,
    pub prompt: u64,
    pub output: u64,
}

/// Generates `n` requests from an arrival process and two length distributions.
pub fn generate(
    n: u64,
    arrival: Arrival,
    prompt: &Lengths,
    output: &Lengths,
    seed: u64,
) -> Result<Vec<RequestSpec>, SimError> {
    let mut gaps = ChaCha8Rng::seed_from_u64(seed);
    gaps.set_stream(0);
    let mut prng = ChaCha8Rng::seed_from_u64(seed);
    prng.set_stream(1);
    let mut orng = ChaCha8Rng::seed_from_u64(seed);
    orng.set_stream(2);
    let ps = Sampler::new(prompt)?;
    let os = Sampler::new(output)?;
    let gamma = match arrival {
        Arrival::Gamma { rate, cv } => {
            let shape = 1.0 / (cv * cv);
            Some(
                Gamma::new(shape, 1.0 / (rate * shape))
                    .map_err(|e| SimError::Input(format!("gamma arrivals: {e}")))?,
            )
        }
        _ => None,
    };
    let mut t = 0.0f64;
    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(1 << 26));
    for _ in 0..n {
        let gap = match arrival {
            Arrival::Poisson { rate } => {
                let u: f64 = gaps.gen();
                -(1.0 - u).ln() / rate
            }
            Arrival::Gamma { .. } => gamma.as_ref().map_or(0.0, |g| g.sample(&mut gaps)),
            Arrival::Constant { rate } => 1.0 / rate,
        };
        t += gap;
        out.push(RequestSpec {
            // Saturates far beyond any simulated-time limit (and below the engine's sentinel).
            arrival_ns: ((t * NS).round() as u64).min(u64::MAX / 2),
            prompt: ps.draw(&mut prng).max(1),
            output: os.draw(&mut orng).max(1),
        });
    }
    Ok(out)
}

/// A parsed workload file: rows in file order; `arrival_s` present on every row or on none.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadFile {
    pub rows: Vec<FileRow>,
    /// Every row carried an arrival time (replay); otherwise arrivals come from `--rate`.
    pub has_arrivals: bool,
}

/// One row of a workload file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FileRow {
    pub arrival_s: Option<f64>,
    pub prompt: u64,
    pub output: u64,
}

#[derive(Deserialize)]
struct JsonRow {
    #[serde(alias = "arrival", alias = "timestamp")]
    arrival_s: Option<f64>,
    #[serde(alias = "prompt", alias = "input_tokens", alias = "prompt_len")]
    prompt_tokens: Option<u64>,
    #[serde(alias = "output", alias = "output_len")]
    output_tokens: Option<u64>,
}

/// Parses a workload file: JSON Lines when the first non-blank character is `{`, otherwise CSV
/// with a header naming `prompt_tokens`, `output_tokens` and optionally `arrival_s` (see
/// `docs/workload-format.md`). Errors name the line.
pub fn parse_workload(text: &str) -> Result<WorkloadFile, SimError> {
    let first = text.trim_start().chars().next();
    let rows = match first {
        None => {
            return Err(SimError::Input(
                "workload file is empty: add a header and at least one request row".into(),
            ))
        }
        Some('{') => parse_jsonl(text)?,
        Some(_) => parse_csv(text)?,
    };
    if rows.is_empty() {
        return Err(SimError::Input(
            "workload file has no request rows: add at least one".into(),
        ));
    }
    let with = rows.iter().filter(|r| r.arrival_s.is_some()).count();
    if with != 0 && with != rows.len() {
        return Err(SimError::Input(format!(
            "workload file gives arrival_s on {with} of {} rows: give it on every row or on none",
            rows.len()
        )));
    }
    Ok(WorkloadFile {
        has_arrivals: with == rows.len(),
        rows,
    })
}

fn check_row(
    line: usize,
    arrival: Option<f64>,
    prompt: u64,
    output: u64,
) -> Result<FileRow, SimError> {
    let bad = |why: String| SimError::Input(format!("workload file line {line}: {why}"));
    if let Some(a) = arrival {
        if !(0.0..1e9).contains(&a) {
            return Err(bad(format!(
                "arrival_s must be a time in seconds ≥ 0 (got {a})"
            )));
        }
    }
    if prompt == 0 || prompt > 1 << 24 {
        return Err(bad(format!(
            "prompt_tokens must be in 1..=16777216 (got {prompt})"
        )));
    }
    if output == 0 || output > 1 << 24 {
        return Err(bad(format!(
            "output_tokens must be in 1..=16777216 (got {output})"
        )));
    }
    Ok(FileRow {
        arrival_s: arrival,
        prompt,
        output,
    })
}

fn parse_jsonl(text: &str) -> Result<Vec<FileRow>, SimError> {
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let r: JsonRow = serde_json::from_str(l).map_err(|e| {
            SimError::Input(format!(
                "workload file line {line}: not a JSON object with numeric fields ({e})"
            ))
        })?;
        let (Some(p), Some(o)) = (r.prompt_tokens, r.output_tokens) else {
            return Err(SimError::Input(format!(
                "workload file line {line}: needs prompt_tokens and output_tokens"
            )));
        };
        rows.push(check_row(line, r.arrival_s, p, o)?);
    }
    Ok(rows)
}

fn parse_csv(text: &str) -> Result<Vec<FileRow>, SimError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((hline, header)) = lines.next() else {
        return Err(SimError::Input("workload file is empty".into()));
    };
    let names: Vec<String> = header
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let find = |keys: &[&str]| names.iter().position(|n| keys.contains(&n.as_str()));
    let ia = find(&["arrival_s", "arrival", "timestamp"]);
    let (Some(ip), Some(io)) = (
        find(&["prompt_tokens", "prompt", "input_tokens", "prompt_len"]),
        find(&["output_tokens", "output", "output_len"]),
    ) else {
        return Err(SimError::Input(format!(
            "workload file line {}: the CSV header must name prompt_tokens and output_tokens (and optionally arrival_s); got '{}'",
            hline + 1,
            header.trim()
        )));
    };
    let mut rows = Vec::new();
    for (i, raw) in lines {
        let line = i + 1;
        let cells: Vec<&str> = raw.split(',').map(|c| c.trim().trim_matches('"')).collect();
        if cells.len() != names.len() {
            return Err(SimError::Input(format!(
                "workload file line {line}: {} fields, the header has {}",
                cells.len(),
                names.len()
            )));
        }
        let int = |j: usize, what: &str| -> Result<u64, SimError> {
            cells[j].parse::<u64>().map_err(|_| {
                SimError::Input(format!(
                    "workload file line {line}: {what} '{}' is not a whole number",
                    cells[j]
                ))
            })
        };
        let arrival = match ia {
            Some(j) if !cells[j].is_empty() => Some(cells[j].parse::<f64>().map_err(|_| {
                SimError::Input(format!(
                    "workload file line {line}: arrival_s '{}' is not a number",
                    cells[j]
                ))
            })?),
            _ => None,
        };
        rows.push(check_row(
            line,
            arrival,
            int(ip, "prompt_tokens")?,
            int(io, "output_tokens")?,
        )?);
    }
    Ok(rows)
}

impl WorkloadFile {
    /// Parses a workload file's text; see [`parse_workload`].
    pub fn parse(text: &str) -> Result<WorkloadFile, SimError> {
        parse_workload(text)
    }

    /// The requests of the file: replayed arrival times (sorted, shifted to start at zero) when
    /// the file has them, otherwise arrivals from `arrival` with the file's lengths in order,
    /// cycling when `n` exceeds the rows.
    pub fn requests(
        &self,
        n: Option<u64>,
        arrival: Option<Arrival>,
        seed: u64,
    ) -> Result<Vec<RequestSpec>, SimError> {
        if self.has_arrivals {
            let mut v: Vec<RequestSpec> = self
                .rows
                .iter()
                .map(|r| RequestSpec {
                    arrival_ns: (r.arrival_s.unwrap_or(0.0) * NS).round() as u64,
                    prompt: r.prompt,
                    output: r.output,
                })
                .collect();
            v.sort_by_key(|r| r.arrival_ns);
            let t0 = v.first().map_or(0, |r| r.arrival_ns);
            for r in &mut v {
                r.arrival_ns -= t0;
            }
            if let Some(n) = n {
                v.truncate(usize::try_from(n).unwrap_or(usize::MAX));
            }
            return Ok(v);
        }
        let Some(arrival) = arrival else {
            return Err(SimError::Input(
                "the workload file has no arrival_s column: give --rate".into(),
            ));
        };
        let n = n.unwrap_or(self.rows.len() as u64);
        let mut v = generate(n, arrival, &Lengths::Fixed(1), &Lengths::Fixed(1), seed)?;
        for (i, r) in v.iter_mut().enumerate() {
            let row = &self.rows[i % self.rows.len()];
            r.prompt = row.prompt;
            r.output = row.output;
        }
        Ok(v)
    }

    /// Prompt lengths as an empirical distribution.
    pub fn prompt_lengths(&self) -> Lengths {
        Lengths::Empirical(self.rows.iter().map(|r| r.prompt).collect())
    }

    /// Output lengths as an empirical distribution.
    pub fn output_lengths(&self) -> Lengths {
        Lengths::Empirical(self.rows.iter().map(|r| r.output).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_parse() {
        assert_eq!("512".parse::<Lengths>().unwrap(), Lengths::Fixed(512));
        assert_eq!(
            "uniform:10:20".parse::<Lengths>().unwrap(),
            Lengths::Uniform { lo: 10, hi: 20 }
        );
        assert!("uniform:20:10".parse::<Lengths>().is_err());
        assert!("0".parse::<Lengths>().is_err());
        assert!("lognormal:100:9".parse::<Lengths>().is_err());
        assert!("zipf:1".parse::<Lengths>().is_err());
    }

    #[test]
    fn arrivals_reject_bad_rates() {
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Arrival::parse("poisson", r).is_err());
        }
        assert!(Arrival::parse("gamma:0", 1.0).is_err());
        assert!(Arrival::parse("weibull", 1.0).is_err());
        assert_eq!(
            Arrival::parse("gamma:2", 3.0).unwrap(),
            Arrival::Gamma { rate: 3.0, cv: 2.0 }
        );
    }

    #[test]
    fn generated_rates_and_means_match() {
        let n = 200_000;
        for arrival in [
            Arrival::Poisson { rate: 10.0 },
            Arrival::Gamma {
                rate: 10.0,
                cv: 3.0,
            },
            Arrival::Constant { rate: 10.0 },
        ] {
            let v = generate(
                n,
                arrival,
                &Lengths::LogNormal {
                    mean: 300.0,
                    sigma: 1.0,
                },
                &Lengths::Uniform { lo: 1, hi: 199 },
                7,
            )
            .unwrap();
            let span = v.last().unwrap().arrival_ns as f64 / NS;
            let rate = n as f64 / span;
            assert!((rate / 10.0 - 1.0).abs() < 0.03, "{arrival:?}: rate {rate}");
            let mp = v.iter().map(|r| r.prompt as f64).sum::<f64>() / n as f64;
            let mo = v.iter().map(|r| r.output as f64).sum::<f64>() / n as f64;
            assert!((mp / 300.0 - 1.0).abs() < 0.02, "prompt mean {mp}");
            assert!((mo / 100.0 - 1.0).abs() < 0.02, "output mean {mo}");
        }
    }

    #[test]
    fn same_seed_same_requests() {
        let a = generate(
            1000,
            Arrival::Poisson { rate: 5.0 },
            &Lengths::Fixed(8),
            &"uniform:1:9".parse().unwrap(),
            3,
        )
        .unwrap();
        let b = generate(
            1000,
            Arrival::Poisson { rate: 5.0 },
            &Lengths::Fixed(8),
            &"uniform:1:9".parse().unwrap(),
            3,
        )
        .unwrap();
        let c = generate(
            1000,
            Arrival::Poisson { rate: 5.0 },
            &Lengths::Fixed(8),
            &"uniform:1:9".parse().unwrap(),
            4,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn workload_files_parse_and_report_lines() {
        let csv = "arrival_s,prompt_tokens,output_tokens\n0.5,100,20\n0.1,50,10\n";
        let w = parse_workload(csv).unwrap();
        assert!(w.has_arrivals);
        let r = w.requests(None, None, 0).unwrap();
        assert_eq!(
            r[0],
            RequestSpec {
                arrival_ns: 0,
                prompt: 50,
                output: 10
            }
        );
        assert_eq!(r[1].arrival_ns, 400_000_000);

        let jsonl =
            "{\"prompt_tokens\": 10, \"output_tokens\": 3}\n\n{\"prompt\": 7, \"output\": 2}\n";
        let w = parse_workload(jsonl).unwrap();
        assert!(!w.has_arrivals);
        assert!(w.requests(Some(5), None, 0).is_err());
        let r = w
            .requests(Some(5), Some(Arrival::Constant { rate: 2.0 }), 0)
            .unwrap();
        assert_eq!(r.len(), 5);
        assert_eq!((r[3].prompt, r[3].output), (7, 2));

        for (text, needle) in [
            ("", "empty"),
            ("prompt_tokens,output_tokens\n", "no request rows"),
            ("prompt_tokens,output_tokens\n5,x\n", "line 2"),
            ("prompt_tokens,output_tokens\n5,1\n5\n", "line 3"),
            ("a,b\n1,2\n", "header"),
            ("{\"prompt_tokens\": 1}\n", "line 1"),
            (
                "{\"prompt_tokens\": 1, \"output_tokens\": 1}\n{bad\n",
                "line 2",
            ),
            ("arrival_s,prompt_tokens,output_tokens\n-1,5,5\n", "line 2"),
            (
                "arrival_s,prompt_tokens,output_tokens\n1,5,5\n,5,5\n",
                "every row",
            ),
            ("prompt_tokens,output_tokens\n0,1\n", "line 2"),
        ] {
            let e = parse_workload(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }
}
