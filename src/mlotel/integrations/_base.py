"""Machinery shared by the library instrumentors.

Every instrumentor follows the opentelemetry-python-contrib pattern
(``BaseInstrumentor``, wrapt wrappers, an ``opentelemetry_instrumentor`` entry
point) and reports through the same call path as ``@mlotel.instrument``
(:func:`mlotel._call.start_call` / :meth:`~mlotel._call.ObservedCall.finish`), so an
auto-instrumented call emits exactly the span, metrics and log record a decorated one
does.

Three pieces live here:

* :data:`STATE`, one context variable shared by every integration: while an
  observed inference (or a training call) runs, nested model calls pass straight
  through, so a ``Pipeline`` or a torch model with submodules is one inference
  and predictions made while fitting are none.
* :class:`Patches`, which wraps methods in class dictionaries and restores the
  exact original objects (identity included) on uninstrument.
* :class:`MLInstrumentor`, the base class: lazy patching through a post-import
  hook (instrumenting never imports torch or scikit-learn itself), per-entry-point
  dependency checks, and model naming from attributes or mappings.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import wrapt
from opentelemetry.instrumentation.dependencies import (
    DependencyConflict,
    get_dependency_conflicts,
)
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from .. import _lifecycle, semconv
from .._aggregator import Analyzer
from .._call import (
    INFERENCE,
    MODEL_CALL_STATE,
    TRAINING,
    ModelSpec,
    Readout,
    input_of,
    observe_sync,
)
from .._config import setting_from_env
from .._self_telemetry import tally

__all__ = [
    "INFERENCE",
    "MODEL_NAME_ATTRIBUTE",
    "MODEL_VERSION_ATTRIBUTE",
    "STATE",
    "TRAINING",
    "MLInstrumentor",
    "Patches",
    "all_subclasses",
    "default_prepare",
    "inference_wrapper",
    "lookup",
    "names_of",
    "not_inference",
    "pass_through",
    "training_wrapper",
]

_logger = logging.getLogger("mlotel")

STATE = MODEL_CALL_STATE
"""Set while an observed call runs: nested model calls are not separate inferences
(``@mlotel.instrument`` and the proxy set it too)."""

MODEL_NAME_ATTRIBUTE = "mlotel_model_name"
"""Set this attribute on a model object to name it (``clf.mlotel_model_name = "churn"``)."""
MODEL_VERSION_ATTRIBUTE = "mlotel_model_version"
"""Set this attribute on a model object to give its version."""

class not_inference:
    """Treat model calls inside the block as training/evaluation, not inferences.

    Useful for evaluation code mlotel cannot recognise (a hand-written scorer loop).

    >>> import mlotel, mlotel.testing
    >>> from mlotel.integrations import not_inference
    >>> from sklearn.dummy import DummyClassifier
    >>> model = DummyClassifier().fit([[0.0], [1.0]], [0, 1])
    >>> with mlotel.testing.capture_telemetry() as captured:
    ...     _ = mlotel.auto_instrument(["sklearn"])
    ...     with not_inference():
    ...         _ = model.predict([[0.5]])  # evaluation: not an inference
    ...     _ = model.predict([[0.5]])
    ...     mlotel.integrations.uninstrument_all()
    >>> len(captured.spans)
    1
    """

    def __init__(self) -> None:
        self._token: contextvars.Token[int | None] | None = None

    def __enter__(self) -> not_inference:
        self._token = STATE.set(TRAINING)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            STATE.reset(self._token)
            self._token = None


_NAMES: dict[int, tuple[Any, tuple[str, ...]]] = {}
_NAMES_CAP = 256


def names_of(carried: Any) -> tuple[str, ...] | None:
    """``feature_names_in_``-style arrays as a tuple of str, converted once per array."""
    if carried is None:
        return None
    found = _NAMES.get(id(carried))
    if found is not None and found[0] is carried:
        return found[1]
    try:
        names = tuple(map(str, carried))
    except TypeError:
        return None
    if len(_NAMES) >= _NAMES_CAP:
        _NAMES.clear()
    _NAMES[id(carried)] = (carried, names)  # holds the array: its id cannot be reused
    return names


def _is_mlotel_wrapper(value: Any) -> bool:
    return bool(getattr(getattr(value, "_self_wrapper", None), "_mlotel_wrapper", False))


def _wrappable(value: Any) -> bool:
    """Plain functions and method-like descriptors (e.g. sklearn's ``available_if``)."""
    if isinstance(value, (staticmethod, classmethod, property, type)):
        return False
    return callable(value) or hasattr(value, "__get__")


class Patches:
    """Wrappers installed in class (or module) dictionaries, restorable exactly.

    Each wrapper replaces ``owner.__dict__[name]``; :meth:`restore_all` puts back
    the very object that was there (``unwrap`` through ``getattr`` would bind
    descriptors such as sklearn's ``available_if`` and put back a different object).
    A method another mlotel instrumentor already wraps is left alone, so wrappers
    never stack.
    """

    def __init__(self) -> None:
        self._done: list[tuple[Any, str, Any, Any]] = []
        self._lock = threading.RLock()

    def wrap(self, owner: Any, name: str, wrapper: Callable[..., Any]) -> bool:
        original = vars(owner).get(name)
        if original is None or _is_mlotel_wrapper(original) or not _wrappable(original):
            return False
        wrapper._mlotel_wrapper = True  # type: ignore[attr-defined]
        with self._lock:
            wrapt.wrap_function_wrapper(owner, name, wrapper)
            self._done.append((owner, name, vars(owner)[name], original))
        return True

    def restore_all(self) -> None:
        with self._lock:
            done, self._done = self._done, []
        for owner, name, installed, original in reversed(done):
            if vars(owner).get(name) is installed:  # someone re-patched it since: leave theirs
                setattr(owner, name, original)

    def __len__(self) -> int:
        return len(self._done)


class _SubclassHook:
    """Patches classes defined later: wraps ``root.__init_subclass__`` and undoes it."""

    def __init__(self, root: type, on_new_class: Callable[[type], None]) -> None:
        self.root = root
        self._had_own = "__init_subclass__" in vars(root)
        self._original = vars(root).get("__init_subclass__")
        root_class: Any = root

        def __init_subclass__(cls: Any, /, **kwargs: Any) -> None:
            if self._original is not None:
                self._original.__func__(cls, **kwargs)
            else:
                super(root_class, cls).__init_subclass__(**kwargs)
            try:
                on_new_class(cls)
            except Exception as exc:  # fail open: the class still gets defined
                tally.error("integrations.subclass", exc)

        self._installed: Any = classmethod(__init_subclass__)
        root.__init_subclass__ = self._installed  # type: ignore[assignment]

    def remove(self) -> None:
        if vars(self.root).get("__init_subclass__") is not self._installed:
            return
        if self._had_own:
            self.root.__init_subclass__ = self._original  # type: ignore[assignment]
        else:
            delattr(self.root, "__init_subclass__")


def all_subclasses(root: type) -> list[type]:
    """``root`` and every subclass defined so far."""
    seen: dict[type, None] = {root: None}
    stack = [root]
    while stack:
        subclasses: list[type] = type.__subclasses__(stack.pop())
        for sub in subclasses:
            if sub not in seen:
                seen[sub] = None
                stack.append(sub)
    return list(seen)


def lookup(mapping: Mapping[Any, Any] | None, cls: type, name: str | None = None) -> Any:
    """``mapping``'s value for a model class: by class, qualified name, name, or model name.

    >>> class Net: ...
    >>> lookup({"Net": "softmax"}, Net), lookup({"churn": 3}, Net, "churn"), lookup(None, Net)
    ('softmax', 3, None)
    """
    if not mapping:
        return None
    for key in (cls, cls.__qualname__, cls.__name__, name):
        if key is not None and key in mapping:
            return mapping[key]
    return None


def _load_references(given: Mapping[Any, Any] | None) -> dict[Any, Any]:
    """``references`` option merged over ``MLOTEL_REFERENCES``, paths loaded as profiles."""
    found: dict[Any, Any] = dict(setting_from_env("references"))
    found.update(given or {})
    if not found:
        return found
    from ..drift import Profile

    return {
        key: Profile.load(value) if isinstance(value, (str, os.PathLike)) else value
        for key, value in found.items()
    }


class MLInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Base of mlotel's library instrumentors.

    Subclasses set ``_library`` (the entry point name), ``_module`` (patched when it
    is imported, immediately if it already is), ``_instruments`` /
    ``_instruments_any`` (requirement strings) and implement :meth:`_patch`.

    Options every instrumentor takes in ``instrument(...)``:

    * ``model_names``: mapping from model class (or class name) to a model name;
      an object's own ``mlotel_model_name`` attribute wins over it.
    * ``model_versions``: the same for versions (``mlotel_model_version``).
    * ``outputs``: mapping from class, class name or model name to how the output
      is read (``auto``, ``labels``, ``probabilities``, ``regression``, ``none``).
    * ``references``: mapping from class, class name or model name to a reference
      :class:`mlotel.Profile` or the path of a saved one: those models get the
      streaming drift and data-quality monitor (``docs/drift.md``). Without code,
      ``MLOTEL_REFERENCES="churn=/models/churn-ref.json,fraud=..."`` does the same.

    >>> import mlotel.testing
    >>> from mlotel.integrations import instrumentor
    >>> from sklearn.dummy import DummyRegressor
    >>> sklearn_instrumentor = instrumentor("sklearn")
    >>> sklearn_instrumentor.instrument(model_names={"DummyRegressor": "baseline"})
    >>> model = DummyRegressor().fit([[0.0], [1.0]], [1.0, 3.0])  # fit: no inference
    >>> with mlotel.testing.capture_telemetry() as captured:
    ...     model.predict([[5.0]])
    array([2.])
    >>> sklearn_instrumentor.uninstrument()
    >>> [span.name for span in captured.spans]
    ['predict baseline']
    """

    _library = ""
    _module = ""
    _instruments: tuple[str, ...] = ()
    _instruments_any: tuple[str, ...] = ()

    def __init__(self) -> None:
        if getattr(self, "_initialised", False):  # BaseInstrumentor is a singleton
            return
        self._initialised = True
        self._patches = Patches()
        self._hooks: list[_SubclassHook] = []
        self._generation = 0
        self._active = False
        self._options: dict[str, Any] = {}
        self._specs: dict[tuple[Any, ...], ModelSpec] = {}
        self._drift_monitors: dict[tuple[str, str | None], Analyzer] = {}

    # --- dependencies -------------------------------------------------------------
    def instrumentation_dependencies(self) -> Collection[str]:
        """Requirement strings of the instrumented library (``opentelemetry-instrument`` API)."""
        return self._instruments

    def _check_dependency_conflicts(self) -> DependencyConflict | None:
        return get_dependency_conflicts(self._instruments, self._instruments_any)

    def instrument(self, **kwargs: Any) -> Any:
        """Instrument the library (a no-op with a debug log when it is not installed).

        ``opentelemetry-instrument`` passes ``skip_dep_check=True`` after checking the
        whole distribution; mlotel ships one entry point per library in one
        distribution, so each instrumentor checks its own library here regardless.
        """
        kwargs.pop("skip_dep_check", None)
        raise_on_conflict = kwargs.pop("raise_exception_on_conflict", False)
        conflict = self._check_dependency_conflicts()
        if conflict is not None:
            if raise_on_conflict:
                from opentelemetry.instrumentation.dependencies import DependencyConflictError

                raise DependencyConflictError(conflict)
            log = _logger.error if (conflict.found or conflict.found_any) else _logger.debug
            log("mlotel %s instrumentation: %s", self._library, conflict)
            return None
        return super().instrument(skip_dep_check=True, **kwargs)

    # --- lifecycle -------------------------------------------------------------------
    def _instrument(self, **kwargs: Any) -> None:
        self._options = dict(kwargs)
        # Profiles are loaded here: a bad reference fails at instrument time, not in predict.
        self._options["references"] = _load_references(kwargs.get("references"))
        self._drift_monitors = {}
        self._specs = {}
        self._generation += 1
        self._active = True
        self._when_imported(self._module, self._patch, f"integrations.{self._library}")

    def _when_imported(
        self, module_name: str, patch: Callable[[Any], None], component: str
    ) -> None:
        """Run ``patch(module)`` when ``module_name`` is imported (at once if it already
        is), unless this instrumentation was turned off (or on again) meanwhile; a fault
        is counted in ``component``."""
        generation = self._generation

        def on_import(module: Any) -> None:
            # wrapt offers no way to unregister a hook: a stale one does nothing.
            if not self._active or generation != self._generation:
                return
            try:
                patch(module)
            except Exception as exc:
                tally.error(component, exc)

        wrapt.register_post_import_hook(on_import, module_name)

    def _uninstrument(self, **kwargs: Any) -> None:
        self._active = False
        for hook in reversed(self._hooks):
            hook.remove()
        self._hooks = []
        self._patches.restore_all()
        self._specs = {}

    def _patch(self, module: Any) -> None:
        raise NotImplementedError

    def _hook_subclasses(self, root: type, on_new_class: Callable[[type], None]) -> None:
        self._hooks.append(_SubclassHook(root, on_new_class))

    def _wrap_methods(
        self, classes: Iterable[type], wrappers: Mapping[str, Callable[..., Any]]
    ) -> None:
        for cls in classes:
            own = vars(cls)
            for name, wrapper in wrappers.items():
                if name in own:
                    self._patches.wrap(cls, name, wrapper)

    def _estimator_wrappers(
        self, inference: Iterable[str], training: Iterable[str]
    ) -> dict[str, Callable[..., Any]]:
        """Method name → wrapper: sklearn-style ``inference`` methods, ``training`` ones."""
        wrappers: dict[str, Callable[..., Any]] = {
            name: inference_wrapper(self, name) for name in inference
        }
        wrappers.update(dict.fromkeys(training, training_wrapper))
        return wrappers

    def _wrap_class_tree(self, root: type, patch_class: Callable[[type], None]) -> None:
        """Patch every subclass of ``root`` now, and each one defined later."""
        for cls in all_subclasses(root):
            patch_class(cls)
        self._hook_subclasses(root, patch_class)

    def _wrap_training_functions(self, namespaces: Iterable[Any], names: Iterable[str]) -> None:
        """Model calls inside these module-level functions (``train``, ``cv``) are training."""
        for namespace in namespaces:
            for name in names:
                if name in vars(namespace):
                    self._patches.wrap(namespace, name, training_wrapper)

    # --- model identity ------------------------------------------------------------------
    def spec_for(self, instance: Any, operation: str, *extra: Any) -> ModelSpec:
        """The ModelSpec of ``instance``'s ``operation`` (cached per class and naming)."""
        try:
            own = instance.__dict__
            name = own.get(MODEL_NAME_ATTRIBUTE)
            version = own.get(MODEL_VERSION_ATTRIBUTE)
        except AttributeError:
            name = version = None
        cls = type(instance)
        key = (cls, operation, name, version, *extra)
        spec = self._specs.get(key)
        if spec is None:
            spec = self._build_spec(instance, cls, operation, name, version, extra)
            if len(self._specs) >= 1024:  # bounded: names set per object could vary freely
                self._specs.clear()
            self._specs[key] = spec
        return spec

    def _build_spec(
        self,
        instance: Any,
        cls: type,
        operation: str,
        name: Any,
        version: Any,
        extra: tuple[Any, ...],
    ) -> ModelSpec:
        options = self._options
        name, version = self._identity(instance, cls, name, version)
        model_name = str(
            name or lookup(options.get("model_names"), cls) or self._default_name(instance, cls)
        )
        if version is None:
            version = lookup(options.get("model_versions"), cls, model_name)
        output = lookup(options.get("outputs"), cls, model_name) or self._default_output(
            instance, cls, model_name
        )
        version_text = None if version is None else str(version)
        spec = ModelSpec(
            model_name,
            version_text,
            semconv.framework_of(cls),
            operation,
            None,
            output,
            analyzers=self._analyzers(cls, model_name, version_text),
            span_attributes=self._span_attributes(extra),
        )
        return self._adapt_spec(spec, operation, extra)

    def _adapt_spec(self, spec: ModelSpec, operation: str, extra: tuple[Any, ...]) -> ModelSpec:
        """The spec an operation finally gets (e.g. transformers' GenAI attributes)."""
        return spec

    def _identity(self, instance: Any, cls: type, name: Any, version: Any) -> tuple[Any, Any]:
        """Name and version found on the model itself (None: from the options/defaults)."""
        return name, version

    def _span_attributes(self, extra: tuple[Any, ...]) -> dict[str, Any] | None:
        """Extra span attributes from ``spec_for``'s extra key parts (e.g. torch's device)."""
        return None

    def _analyzers(self, cls: type, model_name: str, version: str | None) -> tuple[Analyzer, ...]:
        reference = lookup(self._options.get("references"), cls, model_name)
        if reference is None:
            return ()
        # One drift monitor per model, shared by its operations (predict, predict_proba).
        key = (model_name, version)
        monitor = self._drift_monitors.get(key)
        if monitor is None:
            from ..drift import DriftMonitor

            monitor = self._drift_monitors[key] = DriftMonitor(reference)
        return (monitor,)

    def _default_name(self, instance: Any, cls: type) -> str:
        return cls.__name__

    def _default_output(self, instance: Any, cls: type, model_name: str) -> str:
        return "auto"


def training_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Wrapper of training/evaluation calls: model calls inside them are not inferences."""
    if STATE.get() is not None:
        return wrapped(*args, **kwargs)
    token = STATE.set(TRAINING)
    try:
        return wrapped(*args, **kwargs)
    finally:
        STATE.reset(token)


Prepare = Callable[[Any, tuple[Any, ...], dict[str, Any]], tuple[Any, Any, Any]]
"""(instance, args, kwargs) -> (features, class_labels, feature_names) of one call."""


def default_prepare(
    instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Any, Any]:
    """sklearn-style objects: first argument, ``classes_``, ``feature_names_in_``.

    A model attribute that raises (a user property) costs only that detail: the call
    is still observed, without class labels or feature names, and the fault counted.
    """
    return (
        input_of(args, kwargs),
        _attribute(instance, "classes_"),
        names_of(_attribute(instance, "feature_names_in_")),
    )


def _attribute(instance: Any, name: str) -> Any:
    try:
        return getattr(instance, name, None)
    except Exception as exc:
        tally.error("integrations.model_attribute", exc)
        return None


def inference_wrapper(
    instrumentor: MLInstrumentor,
    operation: str,
    prepare: Prepare = default_prepare,
    readout: Readout | None = None,
) -> Callable[..., Any]:
    """A wrapt wrapper observing ``operation`` calls as inferences (outermost call only)."""
    spec_for = instrumentor.spec_for
    nested = bool(instrumentor._options.get("nested_spans", False))
    component = f"integrations.{instrumentor._library}"

    def observe(
        wrapped: Callable[..., Any],
        instance: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        state = STATE.get()
        if state is not None or instance is None or not is_instrumentation_enabled():
            child = nested and instance is not None
            return pass_through(state, child, operation, instance, wrapped, args, kwargs)
        try:
            spec = spec_for(instance, operation)
            features, labels, names = prepare(instance, args, kwargs)
        except Exception as exc:  # fail open: e.g. a user property that raises
            tally.error(component, exc)
            return wrapped(*args, **kwargs)
        return observe_sync(spec, wrapped, None, args, kwargs, labels, names, features, readout)

    return observe


def pass_through(
    state: int | None,
    nested_spans: bool,
    operation: str,
    instance: Any,
    wrapped: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run a model call that is no inference of its own (inside one, in training, or
    instrumentation suppressed); inside an inference, with ``nested_spans`` on, under a
    child span ``"{operation} {class name}"`` without metrics."""
    if nested_spans and state == INFERENCE:
        tracer = _lifecycle.lazy_runtime().tracer
        with tracer.start_as_current_span(f"{operation} {type(instance).__name__}"):
            return wrapped(*args, **kwargs)
    return wrapped(*args, **kwargs)
