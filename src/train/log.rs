//! The training loop's metric logs: `metrics.csv` (one row per epoch) and `steps.csv` (one row
//! per logging interval) in the run's folder, plain CSV with a header that a spreadsheet, pandas
//! or a plotting script reads as it is. Rows are kept in memory too, for pictures. A resumed run
//! keeps the rows up to its checkpoint and drops any written after it.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// One row of a log: where the run stood and the named values.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Training steps done in all.
    pub step: u64,
    /// Epochs finished (for a step row: the epoch it is in, from 1).
    pub epoch: usize,
    /// The other columns, in order.
    pub values: Vec<(String, f64)>,
}

impl Row {
    /// The value of column `name`, if the row has it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// A CSV file of rows, written as they come. The first row's columns are the header; every
/// later row must have the same ones.
struct Table {
    path: Option<PathBuf>,
    rows: Vec<Row>,
}

impl Table {
    fn new(path: Option<PathBuf>) -> Table {
        Table {
            path,
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Row) -> Result<()> {
        if let Some(first) = self.rows.first() {
            let names = |r: &Row| r.values.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
            if names(first) != names(&row) {
                return Err(Error::BadFile {
                    path: self.path.clone().unwrap_or_default(),
                    message: format!(
                        "a row with the columns {:?} does not fit the log's {:?} (a run resumed \
                         with other metrics?)",
                        names(&row),
                        names(first)
                    ),
                });
            }
        }
        if let Some(path) = &self.path {
            let io = |source| Error::Io {
                path: path.clone(),
                source,
            };
            let mut file = if self.rows.is_empty() {
                let mut f = std::fs::File::create(path).map_err(io)?;
                f.write_all(header(&row).as_bytes()).map_err(io)?;
                f
            } else {
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(io)?
            };
            file.write_all(line(&row).as_bytes()).map_err(io)?;
        }
        self.rows.push(row);
        Ok(())
    }

    /// Keep the rows of an earlier run that `keep` accepts, rewriting the file without the
    /// others (through a temporary file, so a crash leaves the old log); a missing file is an
    /// empty log.
    fn resume(&mut self, keep: impl Fn(&Row) -> bool) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !path.exists() {
            return Ok(());
        }
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| Error::Io { path: p, source }
        };
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let rows: Vec<Row> = parse(path, &text)?.into_iter().filter(keep).collect();
        if let Some(first) = rows.first() {
            let mut body = header(first);
            for r in &rows {
                body += &line(r);
            }
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(".partial");
            let tmp = PathBuf::from(tmp);
            std::fs::write(&tmp, body).map_err(io(&tmp))?;
            std::fs::rename(&tmp, path).map_err(io(path))?;
        }
        self.rows = rows;
        Ok(())
    }
}

fn header(row: &Row) -> String {
    let names: Vec<&str> = row.values.iter().map(|(n, _)| n.as_str()).collect();
    format!("step,epoch,{}\n", names.join(","))
}

fn line(row: &Row) -> String {
    let values: Vec<String> = row.values.iter().map(|(_, v)| format!("{v}")).collect();
    format!("{},{},{}\n", row.step, row.epoch, values.join(","))
}

/// Rows of a log file written by [`Table::push`].
fn parse(path: &Path, text: &str) -> Result<Vec<Row>> {
    let bad = |line: usize, what: &str| Error::BadFile {
        path: path.to_path_buf(),
        message: format!("line {}: {what}", line + 1),
    };
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let names: Vec<&str> = header.split(',').skip(2).collect();
    let mut rows = Vec::new();
    for (i, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != names.len() + 2 {
            return Err(bad(i, "wrong number of columns"));
        }
        let num = |c: &str| c.parse::<f64>().map_err(|_| bad(i, "not a number"));
        rows.push(Row {
            step: cells[0].parse().map_err(|_| bad(i, "bad step"))?,
            epoch: cells[1].parse().map_err(|_| bad(i, "bad epoch"))?,
            values: names
                .iter()
                .zip(&cells[2..])
                .map(|(n, c)| Ok((n.to_string(), num(c)?)))
                .collect::<Result<_>>()?,
        });
    }
    Ok(rows)
}

/// The run's two logs.
pub(super) struct Log {
    epochs: Table,
    steps: Table,
}

impl Log {
    pub(super) fn new(folder: Option<&Path>) -> Log {
        Log {
            epochs: Table::new(folder.map(|f| f.join("metrics.csv"))),
            steps: Table::new(folder.map(|f| f.join("steps.csv"))),
        }
    }

    /// Keep the rows up to a checkpoint taken after `epochs` epochs and `steps` steps.
    pub(super) fn resume(&mut self, epochs: usize, steps: u64) -> Result<()> {
        self.epochs
            .resume(|r| r.epoch <= epochs && r.step <= steps)?;
        self.steps.resume(|r| r.step <= steps)
    }

    /// A row of steps.csv: the mean losses of the steps up to step `step` (counted over the
    /// run) of epoch `epoch` (counted from 1).
    pub(super) fn step_row(
        &mut self,
        step: u64,
        epoch: usize,
        losses: &[(String, f64)],
        pace: Pace,
    ) -> Result<()> {
        let mut values: Vec<(String, f64)> = losses
            .iter()
            .map(|(n, v)| (format!("train_{n}"), *v))
            .collect();
        values.extend(pace.columns());
        self.steps.push(Row {
            step,
            epoch,
            values,
        })
    }

    /// A row of metrics.csv: epoch `epoch` (counted from 1) finished at step `step`.
    pub(super) fn epoch_row(
        &mut self,
        step: u64,
        epoch: usize,
        losses: &[(String, f64)],
        metrics: &[(String, f64)],
        pace: Pace,
    ) -> Result<()> {
        let mut values: Vec<(String, f64)> = losses
            .iter()
            .map(|(n, v)| (format!("train_{n}"), *v))
            .collect();
        values.extend(metrics.iter().cloned());
        values.extend(pace.columns());
        self.epochs.push(Row {
            step,
            epoch,
            values,
        })
    }

    pub(super) fn into_rows(self) -> (Vec<Row>, Vec<Row>) {
        (self.epochs.rows, self.steps.rows)
    }
}

/// The last three columns of a row: the learning rate, the rate of samples and the wall clock.
#[derive(Clone, Copy)]
pub(super) struct Pace {
    pub lr: f32,
    pub samples_per_s: f64,
    pub wall: f64,
}

impl Pace {
    fn columns(self) -> [(String, f64); 3] {
        // The rate as it was set (0.05, not 0.05000000074505806).
        let lr: f64 = self
            .lr
            .to_string()
            .parse()
            .expect("an f32 prints as a number");
        [
            ("lr".to_string(), lr),
            ("samples_per_s".to_string(), self.samples_per_s),
            ("wall_s".to_string(), self.wall),
        ]
    }
}
