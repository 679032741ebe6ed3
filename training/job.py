"""One training job at a time, started from the app: a `python -m training` subprocess with its state on disk.

Each job has a folder `<jobs_dir>/<job id>/`: `state.json` (status, reason, pid, the command, what it was
served as), `train.log` (the subprocess's output), `run/` (its output_dir, with training.progress's live
`progress.jsonl`) and `adapter/` (its export). `<jobs_dir>/active` names the running job; it is created with
O_EXCL, so of two Starts at once one wins and the other is refused with the running job's name. A page reload,
a second tab or a restarted app reads the same files; a job that ended while the app was down is settled by the
next read: installed and served when its export is complete, failed otherwise.

The subprocess leads its own process group; Cancel stops the whole group (SIGTERM, then SIGKILL). Only a run
that finished with exit code 0 (or, with no app following it, a complete export) is copied next to the adapters
folder and renamed into it (training.export's swap: a served folder is never rewritten file by file); a failed
or cancelled run never touches an adapter of the same name, and its state says why it ended.

    jobs = TrainingJobs(Path("runs/jobs"), on_success=lambda name, path: name)
    state = jobs.start(JobSpec(...))          # JobRefused (with the reasons) when it cannot start
    jobs.latest(); jobs.progress(state); jobs.cancel()
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from common.atomic_files import write_json_atomic
from common.devices import gpu_memory_gib
from common.process_group import process_group_alive, stop_process_group
from training.job_memory import GpuMemory, MemoryFit, fit_to_memory
from training.job_spec import JobSpec, spec_problems, training_command
from training.progress import PROGRESS_FILE, read_progress

REPO_ROOT = Path(__file__).resolve().parents[1]
ACTIVE_FILE = "active"
# on_success(adapter name, exported folder) -> the name it is served under; it may raise to say loading failed.
OnSuccess = Callable[[str, Path], str]


class JobRefused(ValueError):
    """The job was not started; the message says why (a running job, a bad name, bad rows...)."""


def memory_verdict(spec: JobSpec, gpu: GpuMemory | None = None) -> str:
    """The memory check made before Start: "ok" (maybe at a smaller batch, training.job_memory), or why the run
    cannot fit beside the server, with the numbers. `gpu`: (free, total) GiB; None reads nvidia-smi
    (common.devices.gpu_memory_gib; a machine without a usable GPU answers "ok")."""
    return fit_to_memory(spec, gpu if gpu is not None else gpu_memory_gib()).refusal or "ok"


class TrainingJobs:
    """The jobs folder of one app: start one job, follow it, cancel it."""

    def __init__(self, jobs_dir: Path, on_success: OnSuccess | None = None, kill_grace_s: float = 10.0):
        self.jobs_dir = Path(jobs_dir).resolve()  # the subprocess runs in the repo root, the app maybe not
        self.on_success = on_success
        self.kill_grace_s = kill_grace_s
        self.cancel_wait_s = 30.0  # how long Cancel waits for the watcher to settle the job
        self._lock = threading.Lock()
        self._state_lock = threading.Lock()  # one read-change-write of a state.json at a time
        self._active_lock = threading.RLock()  # the `active` file's check-then-change steps (claim, finish)
        self._settling = threading.Lock()  # one settlement of an orphaned job at a time (the 1 s timer reads too)
        self._watched: dict[str, subprocess.Popen] = {}

    # --- reading ---
    def read_state(self, job_id: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.jobs_dir / job_id / "state.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def latest(self) -> dict[str, Any] | None:
        """The running job, else the most recently started one (None when there is none)."""
        active = self._active_id()
        if active and (state := self.read_state(active)):
            return self._settle_orphan(state)
        if not self.jobs_dir.is_dir():
            return None
        states = [s for d in self.jobs_dir.iterdir() if d.is_dir() and (s := self.read_state(d.name))]
        return self._settle_orphan(max(states, key=lambda s: s["started"])) if states else None

    def progress(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        return read_progress(self.jobs_dir / state["id"] / "run" / PROGRESS_FILE)

    def log_tail(self, state: dict[str, Any], lines: int = 20) -> str:
        path = self.jobs_dir / state["id"] / "train.log"
        if not path.is_file():
            return ""
        text = path.read_bytes()[-20_000:].decode("utf-8", errors="replace").replace("\r", "\n")
        return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])

    # --- starting ---
    def start(self, spec: JobSpec) -> dict[str, Any]:
        """Check everything, then start the subprocess; JobRefused says why nothing was started."""
        problems, fit = spec_problems(spec), MemoryFit(spec)
        if not problems:  # the rows are readable once checked
            fit = fit_to_memory(spec, gpu_memory_gib())
            problems += [fit.refusal] if fit.refusal else []
        if problems:
            raise JobRefused("\n".join(problems))
        with self._lock:
            job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{spec.name}-{secrets.token_hex(2)}"
            self._claim(job_id)
            try:
                return self._spawn(job_id, fit.spec, fit.note)
            except BaseException:
                (self.jobs_dir / ACTIVE_FILE).unlink(missing_ok=True)
                raise

    def _claim(self, job_id: str) -> None:
        """Create `active` naming job_id, or refuse naming the job that holds it (a dead holder is cleared)."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        with self._active_lock:
            self._claim_active(job_id)

    def _claim_active(self, job_id: str) -> None:
        for _ in range(2):
            try:
                fd = os.open(self.jobs_dir / ACTIVE_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._active_id()
                state = self.read_state(holder) if holder else None
                if state is None and self._active_age_s() < 30:
                    raise JobRefused("another training job is being started at this moment; try again") from None
                if state and self._settle_orphan(state)["status"] == "running":
                    raise JobRefused(
                        f"a training job is already running: '{state['name']}' (job {state['id']}); "
                        "wait for it or cancel it"
                    ) from None
                (self.jobs_dir / ACTIVE_FILE).unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(job_id)
            return
        raise JobRefused("another Start is being set up at this moment; try again")

    def _spawn(self, job_id: str, spec: JobSpec, memory_note: str = "") -> dict[str, Any]:
        """Start the job's subprocess; `memory_note` (what the memory plan changed) heads its log and its end."""
        folder = self.jobs_dir / job_id
        folder.mkdir(parents=True)
        dataset = folder / f"dataset{Path(spec.dataset_path).suffix or '.json'}"
        shutil.copyfile(spec.dataset_path, dataset)  # the job keeps its own copy (an upload is a temp file)
        spec = replace(spec, dataset_path=dataset)
        command = training_command(spec, folder / "run", folder / "adapter")
        state = {
            "id": job_id, "name": spec.name, "status": "running", "reason": "", "started": time.time(),
            "ended": None, "replace": spec.replace, "adapters_dir": str(spec.adapters_dir), "command": command,
            "served_as": None, "cancel_requested": False, "pid": None, "memory_note": memory_note,
        }  # fmt: skip
        write_json_atomic(folder / "state.json", state)
        with (folder / "train.log").open("wb") as log:
            log.write(f"{memory_note}\n".encode() if memory_note else b"")
            log.flush()
            process = subprocess.Popen(
                command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        try:
            state["pid"] = process.pid
            write_json_atomic(folder / "state.json", state)
        except BaseException:  # a job nobody can find must not train on
            stop_process_group(process.pid, self.kill_grace_s, leader=process)
            raise
        self._watched[job_id] = process
        threading.Thread(target=self._watch, args=(job_id, process), name=f"job-{job_id}", daemon=True).start()
        return state

    # --- ending ---
    def cancel(self) -> str:
        """Stop the running job's whole process group; returns a line for the user."""
        with self._lock:  # a Start still spawning its job finishes first, so the job has its process group
            job_id = self._active_id()
            state = self._update_state(job_id, only_if_running=True, cancel_requested=True) if job_id else None
        if state is None:
            return "No training job is running."
        self._stop_group(state["pid"])
        watcher = self._watched.get(job_id)
        if watcher is None:  # started by an app that is gone: nobody else will settle it
            self._finish(job_id, "cancelled", "cancelled from the page; no adapter was changed")
        else:
            deadline = time.monotonic() + self.cancel_wait_s
            while self.read_state(job_id)["status"] == "running" and time.monotonic() < deadline:
                time.sleep(0.1)
        final = self.read_state(job_id) or state
        if final["status"] in ("succeeded", "failed"):  # it ended on its own before the signal
            return f"'{state['name']}' had ended before Cancel: {final['status']}: {final['reason']}"
        if final["status"] == "running":  # e.g. trained already, its adapter being installed and loaded
            return f"Cancel was sent to '{state['name']}', which has not ended yet; its status line will say how."
        return f"Cancelled '{state['name']}'; no adapter was changed."

    def _stop_group(self, pgid: int) -> None:
        """Stop the job's whole process group; returns once none of it is left (the watcher thread reaps the
        leader)."""
        stop_process_group(pgid, self.kill_grace_s)

    def _watch(self, job_id: str, process: subprocess.Popen) -> None:
        code = process.wait()
        state = self.read_state(job_id) or {}
        if state.get("cancel_requested"):
            self._finish(job_id, "cancelled", "cancelled from the page; no adapter was changed")
        elif code != 0:
            self._finish(job_id, "failed", self._failure_reason(job_id, code))
        else:
            self._install(job_id, state)
        self._watched.pop(job_id, None)

    def _failure_reason(self, job_id: str, code: int) -> str:
        tail = self.log_tail({"id": job_id}, lines=200).splitlines()
        errors = [line for line in tail if line.startswith(("error:", "Traceback")) or "Error:" in line]
        why = errors[-1] if errors else f"exit code {code}"
        return f"training failed ({why}); no adapter was changed"

    def _install(self, job_id: str, state: dict[str, Any]) -> None:
        """Move the export into the adapters folder (atomically), then let on_success serve it."""
        from training.export import ExportError, new_staging, swap_into_place

        target, staging = Path(state["adapters_dir"]) / state["name"], None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = new_staging(target)
            shutil.copytree(self.jobs_dir / job_id / "adapter", staging, dirs_exist_ok=True)  # maybe another disk
            swap_into_place(staging, target, overwrite=bool(state["replace"]))
        except (ExportError, OSError) as error:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            self._finish(job_id, "failed", f"trained, but not exported: {error}")
            return
        served, reason = None, f"trained and exported to {target}"
        if self.on_success is not None:
            try:
                served = self.on_success(state["name"], target)
                reason += f"; loaded as '{served}'"
            except Exception as error:  # the adapter is on disk; say why it is not served
                reason += f"; loading it failed: {error}"
        self._finish(job_id, "succeeded", reason, served_as=served)

    def _finish(self, job_id: str, status: str, reason: str, served_as: str | None = None) -> None:
        """Record how the job ended (a run's end names the batch the memory plan chose) and free `active`."""
        note = (self.read_state(job_id) or {}).get("memory_note") if status != "cancelled" else ""
        reason = f"{reason}; {note}" if note else reason
        self._update_state(job_id, status=status, reason=reason, ended=time.time(), served_as=served_as)
        with self._active_lock:  # a Start claiming `active` right now must not lose its claim to this unlink
            if self._active_id() == job_id:
                (self.jobs_dir / ACTIVE_FILE).unlink(missing_ok=True)

    def _update_state(self, job_id: str, only_if_running: bool = False, **changes: Any) -> dict[str, Any] | None:
        """Read, change and write a job's state.json as one step (Cancel and the job's end can meet); with
        `only_if_running`, a job that has ended is left as it is and None is returned."""
        with self._state_lock:
            state = self.read_state(job_id) or {"id": job_id}
            if only_if_running and state.get("status") != "running":
                return None
            state.update(changes)
            write_json_atomic(self.jobs_dir / job_id / "state.json", state)
            return state

    def _active_age_s(self) -> float:
        try:
            return time.time() - (self.jobs_dir / ACTIVE_FILE).stat().st_mtime
        except OSError:
            return float("inf")

    def _active_id(self) -> str | None:
        try:
            return (self.jobs_dir / ACTIVE_FILE).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def _settle_orphan(self, state: dict[str, Any]) -> dict[str, Any]:
        """A 'running' job whose process is gone and that nobody watches ended while no app followed it (the app
        was restarted): its export, when it finished one, is installed and served as a watched job's would be;
        otherwise it failed."""
        if state["status"] != "running" or state["id"] in self._watched:
            return state
        if state.get("pid") and process_group_alive(state["pid"]):
            return state
        if time.time() - state["started"] < 5 and not state.get("pid"):
            return state  # being started by another app process right now
        with self._settling:
            state = self.read_state(state["id"]) or state
            if state["status"] == "running" and state.get("cancel_requested"):
                self._finish(state["id"], "cancelled", "cancelled from the page; no adapter was changed")
            elif state["status"] == "running":
                if (self.jobs_dir / state["id"] / "adapter" / "metrics.json").is_file():  # the export is complete
                    self._install(state["id"], state)
                else:
                    self._finish(state["id"], "failed", "the training process ended while no app was following it")
        return self.read_state(state["id"]) or state
