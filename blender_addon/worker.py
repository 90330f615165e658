"""Long operators (bake, anonymise) run their work on a thread: a progress bar, Esc to cancel,
and the result handed back to the main thread. The UI never blocks."""
import threading


class ModalWorker:
    """Mixin for a modal operator. `start_worker(context, work, name)` runs
    `work(cancel_event, progress)` on a thread, where progress(done, total) may be called from it;
    when it ends, `worker_done(context, value)` runs on the main thread and returns the operator's
    result. Errors raised by `work` become an error report."""

    progress_verb = "processed"

    def start_worker(self, context, work, name: str):
        self._cancel = threading.Event()
        self._progress = [0, None]
        self._outcome = {}

        def run():
            try:
                self._outcome["value"] = work(self._cancel, self._set_progress)
            except BaseException as exc:  # reported on the main thread
                self._outcome["error"] = exc

        self._thread = threading.Thread(target=run, name=name, daemon=False)
        self._thread.start()
        wm = context.window_manager
        wm.progress_begin(0, 100)
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def _set_progress(self, done: int, total: int | None) -> None:
        self._progress[:] = [done, total]

    def modal(self, context, event):
        if event.type == 'ESC':
            self._cancel.set()
            return {'RUNNING_MODAL'}
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        done, total = self._progress
        context.window_manager.progress_update(int(100 * done / total) if total else done % 100)
        if context.area:
            context.area.header_text_set(
                f"maskcap: {self.progress_verb} {done}/{total or '?'} frames (Esc cancels)")
        if self._thread.is_alive():
            return {'RUNNING_MODAL'}
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        if context.area:
            context.area.header_text_set(None)
        if "error" in self._outcome:
            self.report({'ERROR'}, f"maskcap: {self._outcome['error']}")
            return {'CANCELLED'}
        return self.worker_done(context, self._outcome["value"])

    def worker_done(self, context, value):
        raise NotImplementedError

    def cancel(self, context):  # Blender ends the operator (file load, quit): stop the worker
        self._cancel.set()
        self._thread.join(10.0)
        context.window_manager.progress_end()
