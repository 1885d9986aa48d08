//! The last checkpoint of a run, for `--resume`: a consistent set of files in `<out>/resume`.
//!
//! A set is everything a run carries between two steps — the training weights, the optimiser's
//! state, the best weights so far, the weight average, and [`ResumeState`] (the step, the
//! best-so-far tracker, the task's random stream, the command that started the run). It is
//! written into a folder of its own (`set-N.partial`), every file synced, renamed to `set-N`,
//! and only then named in `LATEST`, which is replaced by an atomic rename. A run killed at any
//! moment leaves `LATEST` naming a complete set; older sets are deleted only after that.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::TrainError;

/// The folder of a run's resume sets, inside its output folder.
pub const DIR_NAME: &str = "resume";
/// The file naming the newest complete set.
const LATEST: &str = "LATEST";
/// Format of [`ResumeState`]; a resume refuses another.
pub const FORMAT: u32 = 1;

/// File names inside a set.
pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMISER_FILE: &str = "optimiser.bpk";
pub const BEST_FILE: &str = "best.safetensors";
pub const AVERAGE_FILE: &str = "average.safetensors";
const STATE_FILE: &str = "state.json";

/// What a run carries besides tensors, as JSON in the set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeState {
    pub format: u32,
    /// The command line that started the run (`train position --steps …`, without the
    /// program's name): a resume repeats it.
    pub command: Vec<String>,
    /// Steps taken when the set was written.
    pub steps_taken: usize,
    /// The step of the last evaluation.
    pub evaluated_at: Option<usize>,
    /// Steps the run plans.
    pub steps: usize,
    /// The training model's parameter ids in visiting order: the optimiser's state is keyed by
    /// them, so the reloaded model takes them back.
    pub param_ids: Vec<u64>,
    /// The best evaluation so far.
    pub best: Option<SavedBest>,
    /// Evaluations since the best one (early stopping).
    pub since_best: usize,
    /// The task's random stream ([`crate::fit::Task::stream_state`]).
    pub stream: Vec<u64>,
    /// Updates folded into the weight average, when the run keeps one.
    pub average_updates: Option<usize>,
    /// Training time of the run so far, over all its sessions, in seconds.
    pub elapsed_s: f64,
    /// How long the last evaluation and the last set's writing took, in seconds (a resumed
    /// run keeps them back from its time limit).
    #[serde(default)]
    pub eval_s: Option<f64>,
    #[serde(default)]
    pub save_s: f64,
    /// The run's plan besides its steps (schedule, cadence, patience, averaging, batch): a
    /// resume refuses a run whose settings resolve differently.
    #[serde(default)]
    pub plan: String,
    /// The folder the run was started from: relative paths in `command` resolve against it.
    #[serde(default)]
    pub cwd: Option<std::path::PathBuf>,
}

/// The best evaluation of a run: its selection key, step and metrics (as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedBest {
    pub key: f32,
    pub step: usize,
    pub metrics: serde_json::Value,
}

fn write_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn resume_err(dir: &Path, message: impl std::fmt::Display) -> TrainError {
    TrainError::Resume(format!("cannot resume from {}: {message}", dir.display()))
}

/// Syncs a file or folder to disk.
fn sync(path: &Path) -> Result<(), TrainError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| write_err(path, e))
}

/// The sets of one run: `<out>/resume`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeDir {
    root: PathBuf,
}

/// A set being written: its files go into [`path`](PendingSet::path); nothing is visible to
/// a resume until [`ResumeDir::commit`].
#[derive(Debug)]
pub struct PendingSet {
    number: u64,
    dir: PathBuf,
}

impl PendingSet {
    /// Where a file of the set goes.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Writes the state file.
    pub fn write_state(&self, state: &ResumeState) -> Result<(), TrainError> {
        let path = self.path(STATE_FILE);
        let text = serde_json::to_string_pretty(state).map_err(|e| write_err(&path, e))?;
        std::fs::write(&path, text).map_err(|e| write_err(&path, e))
    }
}

/// A complete set, as named by `LATEST`.
#[derive(Debug, Clone)]
pub struct SavedSet {
    pub dir: PathBuf,
    pub state: ResumeState,
}

impl SavedSet {
    /// Where a file of the set is.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

impl ResumeDir {
    /// The resume sets of the run writing into `out`.
    pub fn of_run(out: &Path) -> Self {
        ResumeDir {
            root: out.join(DIR_NAME),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn set_dir(&self, number: u64) -> PathBuf {
        self.root.join(format!("set-{number:06}"))
    }

    /// The number `LATEST` names, if any.
    fn latest_number(&self) -> Result<Option<u64>, TrainError> {
        let path = self.root.join(LATEST);
        match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .strip_prefix("set-")
                .and_then(|n| n.parse().ok())
                .map(Some)
                .ok_or_else(|| resume_err(&self.root, format!("{LATEST} is not a set's name"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(resume_err(&self.root, e)),
        }
    }

    /// Starts a new set in a fresh folder (a leftover of an interrupted write is removed).
    pub fn begin(&self) -> Result<PendingSet, TrainError> {
        std::fs::create_dir_all(&self.root).map_err(|e| write_err(&self.root, e))?;
        let number = self.latest_number()?.map_or(1, |n| n + 1);
        let dir = self.root.join(format!("set-{number:06}.partial"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| write_err(&dir, e))?;
        }
        std::fs::create_dir(&dir).map_err(|e| write_err(&dir, e))?;
        Ok(PendingSet { number, dir })
    }

    /// Makes `set` the one a resume reads: syncs its files, renames its folder, replaces
    /// `LATEST` atomically, then deletes the sets before it.
    pub fn commit(&self, set: PendingSet) -> Result<(), TrainError> {
        let entries = std::fs::read_dir(&set.dir).map_err(|e| write_err(&set.dir, e))?;
        for entry in entries.flatten() {
            sync(&entry.path())?;
        }
        sync(&set.dir)?;
        let final_dir = self.set_dir(set.number);
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(|e| write_err(&final_dir, e))?;
        }
        std::fs::rename(&set.dir, &final_dir).map_err(|e| write_err(&final_dir, e))?;
        let tmp = self.root.join(format!("{LATEST}.tmp"));
        {
            let mut f = File::create(&tmp).map_err(|e| write_err(&tmp, e))?;
            writeln!(f, "set-{:06}", set.number).map_err(|e| write_err(&tmp, e))?;
            f.sync_all().map_err(|e| write_err(&tmp, e))?;
        }
        let latest = self.root.join(LATEST);
        std::fs::rename(&tmp, &latest).map_err(|e| write_err(&latest, e))?;
        sync(&self.root)?;
        // Older sets (and leftovers of interrupted writes) are no longer needed.
        let keep = final_dir.file_name().map(|n| n.to_owned());
        for entry in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with("set-") && Some(&name) != keep.as_ref() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(())
    }

    /// The newest complete set; an error that says why when there is none or it cannot be
    /// read (an empty folder, a folder of something else, a set of another format).
    pub fn latest(&self) -> Result<SavedSet, TrainError> {
        let Some(number) = self.latest_number()? else {
            return Err(resume_err(
                self.root.parent().unwrap_or(&self.root),
                format!(
                    "no resumable run there (no {}/{LATEST}); a run started by `shotgrade \
                     train` writes one at its first evaluation",
                    DIR_NAME
                ),
            ));
        };
        let dir = self.set_dir(number);
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| resume_err(&dir, e))?;
        let state: ResumeState = serde_json::from_str(&text)
            .map_err(|e| resume_err(&dir, format!("{STATE_FILE}: {e}")))?;
        if state.format != FORMAT {
            return Err(resume_err(
                &dir,
                format!(
                    "written in format {} by another shotgrade (this one reads {FORMAT})",
                    state.format
                ),
            ));
        }
        Ok(SavedSet { dir, state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(step: usize) -> ResumeState {
        ResumeState {
            format: FORMAT,
            command: vec!["train".into(), "position".into()],
            steps_taken: step,
            evaluated_at: Some(step),
            steps: 100,
            param_ids: vec![7, 9],
            best: Some(SavedBest {
                key: 0.5,
                step,
                metrics: serde_json::json!({"mse": 0.25}),
            }),
            since_best: 1,
            stream: vec![42],
            average_updates: None,
            elapsed_s: 1.5,
            eval_s: Some(0.5),
            save_s: 0.1,
            plan: String::new(),
            cwd: None,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("shotgrade-resume-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_set_is_visible_only_once_committed_and_older_ones_go() {
        let out = temp("commit");
        let sets = ResumeDir::of_run(&out);
        assert!(
            sets.latest()
                .unwrap_err()
                .to_string()
                .contains("no resumable run")
        );
        for step in [10, 20] {
            let set = sets.begin().expect("begin");
            std::fs::write(set.path(MODEL_FILE), format!("weights {step}")).expect("write");
            set.write_state(&state(step)).expect("state");
            sets.commit(set).expect("commit");
        }
        let latest = sets.latest().expect("latest");
        assert_eq!(latest.state, state(20));
        assert_eq!(
            std::fs::read_to_string(latest.path(MODEL_FILE)).expect("read"),
            "weights 20"
        );
        let names: Vec<String> = std::fs::read_dir(sets.root())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "LATEST and one set: {names:?}");
        let _ = std::fs::remove_dir_all(&out);
    }

    /// The fault the design guards against: a run killed after writing a new set's files but
    /// before `LATEST` names it. The previous set stays the one read, whole.
    #[test]
    fn a_write_cut_short_before_the_rename_leaves_the_previous_set() {
        let out = temp("fault");
        let sets = ResumeDir::of_run(&out);
        let set = sets.begin().expect("begin");
        std::fs::write(set.path(MODEL_FILE), "weights 10").expect("write");
        set.write_state(&state(10)).expect("state");
        sets.commit(set).expect("commit");

        let torn = sets.begin().expect("begin");
        std::fs::write(torn.path(MODEL_FILE), "half").expect("write");
        drop(torn); // killed here: no state, no rename, no LATEST
        let latest = sets.latest().expect("latest");
        assert_eq!(latest.state.steps_taken, 10);
        assert_eq!(
            std::fs::read_to_string(latest.path(MODEL_FILE)).expect("read"),
            "weights 10"
        );
        // The next write starts over and cleans the leftover up.
        let set = sets.begin().expect("begin");
        set.write_state(&state(30)).expect("state");
        sets.commit(set).expect("commit");
        assert_eq!(sets.latest().expect("latest").state.steps_taken, 30);
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn foreign_or_damaged_folders_are_refused_with_a_reason() {
        let out = temp("foreign");
        let sets = ResumeDir::of_run(&out);
        std::fs::create_dir_all(sets.root()).expect("mkdir");
        std::fs::write(sets.root().join(LATEST), "hello\n").expect("write");
        assert!(sets.latest().unwrap_err().to_string().contains("not a set"));
        std::fs::write(sets.root().join(LATEST), "set-000003\n").expect("write");
        assert!(sets.latest().is_err(), "a set that is not there");
        let set = sets.begin().expect("begin");
        let mut old = state(5);
        old.format = 99;
        set.write_state(&old).expect("state");
        sets.commit(set).expect("commit");
        assert!(sets.latest().unwrap_err().to_string().contains("format 99"));
        let _ = std::fs::remove_dir_all(&out);
    }
}
