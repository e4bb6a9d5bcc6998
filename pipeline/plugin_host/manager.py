"""The one plugin manager: built-ins from plugins/, then entry points, then drop-ins (docs/architecture.md: "Plugins").

Load order decides precedence: pluggy calls the last registered plugin first, so an entry-point
plugin overrides a built-in and a drop-in overrides both (firstresult hooks, presets of the same
name). Core fallbacks are ``trylast`` and always loaded.

Operators steer loading through the environment:

- ``MAILPIPE_PLUGINS``: ``os.pathsep``-separated ``.py`` files or folders to load as drop-ins
  (added to config ``plugins.paths``).
- ``MAILPIPE_LOAD_PLUGINS``: comma list; only these entry-point and drop-in plugins load
  (an empty value loads none). Built-ins are part of mailpipe and always load.
- ``MAILPIPE_BLOCK_PLUGINS``: comma list of plugins never to load, built-in providers included
  (by short name, ``sendgrid``, or module, ``plugins.sendgrid``).
- ``MAILPIPE_TRACE_PLUGINS=1``: log every hook call to the ``mailpipe.plugins`` logger.
"""

from __future__ import annotations

import difflib
import enum
import functools
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import sys
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from pipeline.errors import ConfigError, PluginError
from pipeline.plugin_host import hookspecs
from pipeline.plugin_host.presets import ProviderPreset

if TYPE_CHECKING:
    from pipeline.config import AccountConfig, Config

ENTRY_POINT_GROUP = hookspecs.PROJECT + ".plugins"
ENV_PATHS = "MAILPIPE_PLUGINS"
ENV_LOAD = "MAILPIPE_LOAD_PLUGINS"
ENV_BLOCK = "MAILPIPE_BLOCK_PLUGINS"
ENV_TRACE = "MAILPIPE_TRACE_PLUGINS"

PROVIDER_PLUGINS = (
    "plugins.smtp",
    "plugins.sendgrid",
    "plugins.mailgun",
    "plugins.ses",
    "plugins.gmail",
    "plugins.postmark",
    "plugins.zoho",
    "plugins.yahoo",
    "plugins.outlook",
)
CORE_PLUGINS = ("pipeline.plugin_host.fallbacks", "pipeline.plugin_host.hints")
OPTIONAL_CORE_PLUGINS = ("pipeline.bounces.hooks",)  # registered when the module exists
BUILTIN_PLUGINS = PROVIDER_PLUGINS + CORE_PLUGINS + OPTIONAL_CORE_PLUGINS

REGION_MARK = "@"  # preset "mailgun@eu": the mailgun preset for accounts with region = "eu"
OPTION_MARK = "+"  # preset "gmail+workspace": the gmail preset for accounts with options.workspace = true

log = logging.getLogger("mailpipe.plugins")


class PluginSource(enum.StrEnum):
    BUILTIN = "builtin"
    ENTRY_POINT = "entry point"
    DROP_IN = "drop-in"


@dataclass(frozen=True)
class LoadedPlugin:
    """One registered plugin, for ``mailpipe plugins``."""

    name: str
    source: PluginSource
    origin: str
    hooks: tuple[str, ...]


@dataclass(frozen=True)
class LoadOptions:
    """What to load besides the built-ins; hashable so managers can be cached per options."""

    paths: tuple[Path, ...] = ()
    load: frozenset[str] | None = None
    block: frozenset[str] = frozenset()
    trace: bool = False

    @classmethod
    def from_env(cls, config_paths: Sequence[Path] = (), environ: Mapping[str, str] | None = None) -> LoadOptions:
        env = os.environ if environ is None else environ
        paths = list(config_paths)
        paths += [Path(p) for p in env.get(ENV_PATHS, "").split(os.pathsep) if p.strip()]
        load = env.get(ENV_LOAD)
        return cls(
            paths=tuple(dict.fromkeys(p.expanduser().resolve() for p in paths)),
            load=None if load is None else _names(load),
            block=_names(env.get(ENV_BLOCK, "")),
            trace=env.get(ENV_TRACE, "").strip().lower() in ("1", "true", "yes", "on"),
        )


class ProviderPlugin:
    """The hook implementations of one provider, built from its tables by
    ``pipeline.plugin_host.provider.provider_plugin``; only the hooks its modules feed are attributes.

    A plugin module whose ``plugin`` attribute is one of these is registered as that object.
    """

    def __init__(self, name: str, origin: str) -> None:
        self.name = name
        self.origin = origin  # the package the tables came from

    def __repr__(self) -> str:
        hooks = sorted(attr for attr in vars(self) if attr.startswith(hookspecs.PROJECT + "_"))
        return f"ProviderPlugin({self.name!r} from {self.origin}: {', '.join(hooks)})"


class MailpipePluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from and what it skipped."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.origins: dict[str, tuple[PluginSource, str]] = {}
        self.skipped: dict[str, str] = {}

    def loaded(self) -> list[LoadedPlugin]:
        out = []
        for name, (source, origin) in self.origins.items():
            plugin = self.get_plugin(name)
            callers = self.get_hookcallers(plugin) or []
            out.append(LoadedPlugin(name, source, origin, tuple(sorted(c.name for c in callers))))
        return out


def _names(value: str) -> frozenset[str]:
    return frozenset(_norm(n) for n in value.split(",") if n.strip())


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _hook_names() -> list[str]:
    return sorted(n for n in vars(hookspecs) if n.startswith(hookspecs.PROJECT + "_"))


def _refusal(names: Iterable[str], options: LoadOptions, *, external: bool) -> str | None:
    normed = {_norm(n) for n in names}
    if normed & options.block:
        return f"blocked by {ENV_BLOCK}"
    if external and options.load is not None and not normed & options.load:
        return f"not listed in {ENV_LOAD}"
    return None


def _check_names(plugin: object, name: str, origin: str, pm: pluggy.PluginManager) -> None:
    """Unmarked or misspelt ``mailpipe_*`` functions: an error, not a silently ignored plugin."""
    known = _hook_names()
    prefix = hookspecs.PROJECT + "_"
    for attr in dir(plugin):
        if not attr.startswith(prefix) or not callable(getattr(plugin, attr, None)):
            continue
        if pm.parse_hookimpl_opts(plugin, attr) is not None:
            continue  # marked: misspellings are caught by check_pending
        if attr in known:
            raise PluginError(f"plugin {name} ({origin}) defines {attr} without @hookimpl")
        raise PluginError(f"plugin {name} ({origin}) defines {attr}, which is not a mailpipe hook{_did_you_mean(attr)}")


def _did_you_mean(hook: str) -> str:
    close = difflib.get_close_matches(hook, _hook_names(), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _plugin_object(loaded: object, name: str, origin: str) -> object:
    """What to register for an imported plugin: its ``plugin`` when that is a ProviderPlugin, else itself."""
    built = getattr(loaded, "plugin", None)
    if not isinstance(built, ProviderPlugin):
        return loaded
    own = [attr for attr in dir(loaded) if attr.startswith(hookspecs.PROJECT + "_") and callable(getattr(loaded, attr))]
    if own:
        raise PluginError(
            f"plugin {name} ({origin}) has both a provider_plugin() and hook functions of its own ({', '.join(own)}): "
            "keep one of the two"
        )
    return built


def _register(pm: MailpipePluginManager, loaded: object, name: str, source: PluginSource, origin: str) -> None:
    plugin = _plugin_object(loaded, name, origin)
    if pm.get_plugin(name) is not None or pm.is_blocked(name):
        previous = pm.origins.get(name, (source, "?"))[1]
        raise PluginError(f"plugin {name} ({origin}) clashes with the plugin of that name from {previous}")
    _check_names(plugin, name, origin, pm)
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name} ({origin}): {exc}") from None
    pm.origins[name] = (source, origin)


# The built-in providers are the ``plugins`` package installed beside ``pipeline``, found by that
# location and never by the bare name ``plugins`` on sys.path: an operator's own ``plugins/`` folder
# in the working directory must not replace (or break) them.
INSTALLED_PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def _installed_plugins_package() -> ModuleType:
    """The ``plugins`` package from INSTALLED_PLUGINS, imported by path if nothing imported it yet."""
    init = INSTALLED_PLUGINS / "__init__.py"
    module = sys.modules.get("plugins")
    if module is None:
        spec = importlib.util.spec_from_file_location("plugins", init, submodule_search_locations=[str(INSTALLED_PLUGINS)])
        if spec is None or spec.loader is None:
            raise PluginError(f"mailpipe's built-in providers are missing: no {init}")
        module = importlib.util.module_from_spec(spec)
        sys.modules["plugins"] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop("plugins", None)
            raise
    found = getattr(module, "__file__", None)
    if found is None or Path(found).resolve() != init:
        raise PluginError(
            f"the module 'plugins' was imported from {found or 'a namespace folder'}, not mailpipe's built-in providers "
            f"({INSTALLED_PLUGINS}): a plugins/ folder on sys.path (the working directory?) shadows them; "
            "start Python with -P (PYTHONSAFEPATH=1) or load your own plugins through MAILPIPE_PLUGINS"
        )
    return module


def _import_installed_provider(module_name: str) -> ModuleType:
    _installed_plugins_package()
    return importlib.import_module(module_name)


def _load_builtins(pm: MailpipePluginManager, options: LoadOptions) -> None:
    for module_name in BUILTIN_PLUGINS:
        core = not module_name.startswith("plugins.")
        short = module_name.rsplit(".", 1)[-1]
        reason = None if core else _refusal((module_name, short), options, external=False)
        if reason:
            pm.skipped[module_name] = reason
            continue
        try:
            module = _import_installed_provider(module_name) if not core else importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if module_name in OPTIONAL_CORE_PLUGINS and exc.name and module_name.startswith(exc.name):
                continue  # not written yet / not shipped: nothing to register
            raise
        _register(pm, module, module_name, PluginSource.BUILTIN, module_name)


def _load_entry_points(pm: MailpipePluginManager, options: LoadOptions) -> None:
    for dist in importlib.metadata.distributions():
        dist_name = dist.metadata["Name"] or "?"
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP:
                continue
            origin = f"{dist_name} {dist.version}"
            known = pm.origins.get(ep.name)
            if known and known[0] == PluginSource.ENTRY_POINT and known[1].split(" ")[0] == dist_name:
                continue  # the same distribution found twice on sys.path
            reason = _refusal((ep.name, dist_name), options, external=True)
            if reason:
                pm.skipped[ep.name] = reason
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(f"plugin {ep.name} ({origin}) failed to import: {exc}") from exc
            _register(pm, plugin, ep.name, PluginSource.ENTRY_POINT, origin)


def _drop_in_files(path: Path) -> list[Path]:
    if path.is_file() and path.suffix == ".py":
        return [path]
    if path.is_dir() and (path / "__init__.py").is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
    raise PluginError(f"drop-in plugin path {path} is neither a .py file nor a folder")


def _import_drop_in(path: Path) -> ModuleType:
    name = path.stem if path.is_file() else path.name
    module_name = "mailpipe_dropin_" + re.sub(r"\W", "_", name)
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(module_name, path / "__init__.py", submodule_search_locations=[str(path)])
    else:
        spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"drop-in plugin {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pydantic look modules up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise PluginError(f"drop-in plugin {path} failed to import: {exc}") from exc
    return module


def _load_drop_ins(pm: MailpipePluginManager, options: LoadOptions) -> None:
    for configured in options.paths:
        if not configured.exists():
            raise PluginError(f"drop-in plugin path {configured} does not exist")
        for path in _drop_in_files(configured):
            name = path.stem if path.is_file() else path.name
            reason = _refusal((name,), options, external=True)
            if reason:
                pm.skipped[name] = reason
                continue
            _register(pm, _import_drop_in(path), name, PluginSource.DROP_IN, str(path))


def _check_pending(pm: MailpipePluginManager) -> None:
    """A hook implementation no spec knows is a misspelling: name it, suggest the right one."""
    for hook_name, caller in vars(pm.hook).items():
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            origin = pm.origins.get(impl.plugin_name, (PluginSource.BUILTIN, "?"))[1]
            raise PluginError(
                f"plugin {impl.plugin_name} ({origin}) implements unknown hook {hook_name}{_did_you_mean(hook_name)}"
            )
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from None


def _enable_tracing(pm: MailpipePluginManager) -> None:
    def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]) -> None:
        log.info("plugin hook %s → %s", hook_name, ", ".join(i.plugin_name for i in impls))

    def after(
        outcome: pluggy.Result[Any], hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]
    ) -> None:
        if outcome.exception is not None:
            log.info("plugin hook %s raised %r", hook_name, outcome.exception)
        else:
            log.info("plugin hook %s returned %.200r", hook_name, outcome.get_result())

    pm.add_hookcall_monitoring(before, after)


def build_plugin_manager(options: LoadOptions | None = None) -> MailpipePluginManager:
    """A new manager: built-ins, then entry points, then drop-ins; raises PluginError on any problem."""
    options = options or LoadOptions.from_env()
    pm = MailpipePluginManager()
    _load_builtins(pm, options)
    _load_entry_points(pm, options)
    _load_drop_ins(pm, options)
    _check_pending(pm)
    if options.trace:
        _enable_tracing(pm)
    return pm


@functools.cache
def _cached(options: LoadOptions) -> MailpipePluginManager:
    return build_plugin_manager(options)


def plugin_manager_for(config: Config | None) -> MailpipePluginManager:
    """The manager for a config (its ``plugins.paths``, relative to the config file) and the environment."""
    paths: list[Path] = []
    if config is not None:
        base = Path(config.base_dir)
        paths = [(base / p) for p in config.plugins.paths]
    return _cached(LoadOptions.from_env(paths))


def get_plugin_manager(config: Config | None = None) -> MailpipePluginManager:
    """The shared manager (cached per config paths and environment switches)."""
    return plugin_manager_for(config)


def reset_plugin_managers() -> None:
    """Forget cached managers (tests that change plugins or the environment)."""
    _cached.cache_clear()


_preset_cache: weakref.WeakKeyDictionary[pluggy.PluginManager, tuple[frozenset[int], dict[str, ProviderPreset]]] = (
    weakref.WeakKeyDictionary()
)


def presets(pm: pluggy.PluginManager | None = None) -> dict[str, ProviderPreset]:
    """Every preset by name; a later plugin's preset replaces an earlier one of the same name.

    Kept per plugin manager until its set of plugins changes: resolving a tenant's accounts asks for
    the presets once per account, and the hook builds every provider's presets on each call.
    """
    pm = pm or get_plugin_manager()
    registered = frozenset(id(plugin) for plugin in pm.get_plugins())
    cached = _preset_cache.get(pm)
    if cached is not None and cached[0] == registered:
        return dict(cached[1])
    merged: dict[str, ProviderPreset] = {}
    for batch in reversed(pm.hook.mailpipe_provider_presets()):
        for preset in batch:
            merged[preset.name] = preset
    _preset_cache[pm] = (registered, merged)
    return dict(merged)


def provider_family(provider: str) -> str:
    """``mailgun@eu`` → ``mailgun``; ``gmail+workspace`` → ``gmail``."""
    return re.split(r"[@+]", provider, maxsplit=1)[0]


def is_provider(account: AccountConfig | None, name: str) -> bool:
    """True when the account uses provider ``name`` (any of its region or option variants)."""
    return account is not None and provider_family(account.provider) == name


def preset_for(account: AccountConfig, pm: pluggy.PluginManager | None = None) -> ProviderPreset | None:
    """The preset for an account: its provider, narrowed by region and by boolean options.

    ``region = "eu"`` selects preset ``<provider>@eu`` when the provider publishes one (a host
    with ``{region}`` is filled in instead); ``options.workspace = true`` selects
    ``<provider>+workspace``. An unknown region of a provider that lists its regions is a
    ConfigError naming the known ones.
    """
    known = presets(pm)
    name = account.provider
    base = known.get(name)
    if account.region and REGION_MARK not in name and base is not None and "{region}" not in (base.host or ""):
        regional = f"{name}{REGION_MARK}{account.region.lower()}"
        regions = sorted(k.split(REGION_MARK, 1)[1] for k in known if k.startswith(name + REGION_MARK))
        if regional in known:
            name = regional
        elif regions:
            raise ConfigError(
                [f"account {account.name}: provider {name} has no region {account.region!r} (known: {', '.join(regions)})"]
            )
    for option, value in sorted(account.options.items()):
        variant = f"{name}{OPTION_MARK}{option}"
        if value is True and variant in known:
            name = variant
            break
    return known.get(name)
