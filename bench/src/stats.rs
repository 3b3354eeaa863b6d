//! Medians, p95 and minimum of a set of timings.

use std::time::Duration;

use serde::Serialize;

/// One measured operation of one system.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub case: String,
    pub system: String,
    pub samples: usize,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub min_ms: f64,
}

impl Summary {
    pub fn new(case: &str, system: &str, mut samples: Vec<Duration>) -> Summary {
        assert!(!samples.is_empty(), "{case} / {system}: no samples");
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let n = samples.len();
        Summary {
            case: case.to_string(),
            system: system.to_string(),
            samples: n,
            median_ms: ms(samples[n / 2]),
            p95_ms: ms(samples[(n * 95 / 100).min(n - 1)]),
            min_ms: ms(samples[0]),
        }
    }
}
