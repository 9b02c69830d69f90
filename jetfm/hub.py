"""Where checkpoints come from, and the safety checks every loaded checkpoint passes.

One function, :func:`resolve_pretrained`, turns what a user passes to ``from_pretrained``
into a local folder, in this order:

1. an existing local directory is used as it is;
2. anything else is a Hub repo id; a short name of one of the project's checkpoints
   (``mpm-flow-tiny``) means ``<org>/<name>`` with ``<org>`` from ``$JETFM_HUB_ORG``
   (default ``jetfm``). The Hugging Face cache is tried first, then the Hub
   (``snapshot_download`` of the checkpoint files only: JSON, safetensors, the card);
3. when the Hub cannot be used (offline, ``HF_HUB_OFFLINE=1``, no network, repository not
   published yet) and jetfm ships the checkpoint, the bundled copy is used
   (``model_cards/<name>/`` in a source checkout, ``jetfm/model_cards/<name>/`` in a wheel);
4. otherwise one :class:`~jetfm.errors.CheckpointError` says what was tried.

For shipped names a short connectivity probe runs before any Hub call (never in offline mode),
so a machine without network gets the bundled copy in about a second instead of waiting on
timeouts; after a failed probe the process does not ask the Hub again. That the bundled copy
is used is said once per process and checkpoint (INFO; WARNING where the Hub answered with
an error), later loads of the same name say nothing above DEBUG.

Everything a checkpoint carries (``preprocessor_config.json`` statistics, the VQ-VAE
``tokenizer/`` folder) comes through the same snapshot, so a Hub repo, a cache snapshot and a
local folder behave identically. Safety: weights are read from safetensors only (a folder
with only pickle files is refused, never unpickled), the safetensors header is validated
before torch sees the file, and no code from a checkpoint is ever run
(``trust_remote_code`` is refused).

:class:`HubMixin` plugs this into ``from_pretrained`` of any class. Saving with a model card
and uploading to the Hub live in :mod:`jetfm.publish` (which, unlike this module, needs
:mod:`jetfm.model_card`).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jetfm.errors import CheckpointError

logger = logging.getLogger(__name__)

#: Environment variable naming the Hub organisation of the project's checkpoints.
HUB_ORG_ENV = "JETFM_HUB_ORG"
DEFAULT_HUB_ORG = "jetfm"
#: Seconds the connectivity probe waits for the Hub (``$JETFM_HUB_TIMEOUT`` overrides).
HUB_TIMEOUT_ENV = "JETFM_HUB_TIMEOUT"
DEFAULT_HUB_TIMEOUT = 3.0

#: Checkpoints the project publishes under ``<org>/<name>`` (shipped ones are added to this
#: list from the bundled folder).
PUBLISHED_CHECKPOINTS: tuple[str, ...] = ("mpm-flow-tiny",)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
PROCESSOR_NAME = "preprocessor_config.json"
CARD_NAME = "README.md"
#: Files a checkpoint consists of; the only ones downloaded or uploaded (never pickles).
CHECKPOINT_PATTERNS: tuple[str, ...] = ("*.json", "*.safetensors", "*.md")
#: Never uploaded: training state, hidden files, pickles.
PUSH_IGNORE_PATTERNS: tuple[str, ...] = ("checkpoint-*", "checkpoint-*/*", ".*", "*/.*")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")

_TRUE = {"1", "ON", "YES", "TRUE"}


# --- settings -----------------------------------------------------------------------------
def hub_org() -> str:
    """The organisation of the project's checkpoints (``$JETFM_HUB_ORG``, default ``jetfm``)."""
    return os.environ.get(HUB_ORG_ENV, "").strip() or DEFAULT_HUB_ORG


def hub_endpoint() -> str:
    """The Hub address: ``$HF_ENDPOINT`` read now (huggingface_hub reads it at import)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    """True when Hub access is switched off (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.is_offline_mode()) or env.strip().upper() in _TRUE


def _probe_timeout() -> float:
    try:
        return float(os.environ.get(HUB_TIMEOUT_ENV, DEFAULT_HUB_TIMEOUT))
    except ValueError:
        return DEFAULT_HUB_TIMEOUT


# --- bundled checkpoints ------------------------------------------------------------------
def bundled_roots() -> list[Path]:
    """Folders that may hold shipped checkpoints: inside the installed package (wheel), then
    the top-level ``model_cards/`` of a source checkout."""
    package = Path(__file__).resolve().parent
    return [package / "model_cards", package.parent / "model_cards"]


def bundled_checkpoints(roots: Sequence[Path] | None = None) -> dict[str, Path]:
    """``{name: folder}`` of every checkpoint shipped with this installation: the folders
    with a ``config.json`` in ``roots`` (default :func:`bundled_roots`; the first root
    holding a name wins). Hidden folders (a release's ``.NAME.tmp-*`` staging folder) are
    never checkpoints."""
    found: dict[str, Path] = {}
    for root in bundled_roots() if roots is None else roots:
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.name.startswith(".") or folder.name in found:
                continue
            if (folder / CONFIG_NAME).is_file():
                found[folder.name] = folder
    return found


def known_checkpoints() -> list[str]:
    """Short names that resolve to the project's checkpoints."""
    return sorted(set(PUBLISHED_CHECKPOINTS) | set(bundled_checkpoints()))


def repo_id_for(name: str) -> str:
    """Hub repo id of ``name``: short names (no ``/``) live in the project's organisation."""
    return name if "/" in name else f"{hub_org()}/{name}"


def _shipped_name(repo_id: str) -> str | None:
    org, _, short = repo_id.partition("/")
    return short if org == hub_org() and short in bundled_checkpoints() else None


# --- resolution ---------------------------------------------------------------------------
def _looks_like_path(name: str) -> bool:
    return (
        name.startswith(("/", ".", "~"))
        or name.endswith(("/", os.sep))
        or name.count("/") > 1
        or (os.sep != "/" and os.sep in name)
    )


def _has(folder: Path, required: Sequence[str]) -> bool:
    return all((folder / name).is_file() for name in required)


#: endpoints whose probe failed in this process: a machine without network stays without it
#: for the length of a run, so loading a model, its processor and its config (or evaluating
#: after fine-tuning) pays the probe's timeout once, not at every load
_FAILED_PROBES: set[str] = set()
#: shipped checkpoints whose bundled copy this process has announced (once, then DEBUG)
_ANNOUNCED: set[str] = set()


def hub_reachable(endpoint: str | None = None, timeout: float | None = None) -> bool:
    """One HEAD request to the Hub with a short timeout: does *any* HTTP answer come back?
    (Uses huggingface_hub's session, so its proxy settings apply.) After a failure the
    endpoint is not probed again in this process: the answer stays ``False``."""
    from huggingface_hub.utils import get_session

    endpoint = endpoint or hub_endpoint()
    if endpoint in _FAILED_PROBES:
        return False
    try:
        get_session().head(f"{endpoint}/api/models", timeout=timeout or _probe_timeout())
    except Exception as err:  # any failure to get an answer means "not reachable"
        logger.debug("Hub probe of %s failed: %s", endpoint, err)
        _FAILED_PROBES.add(endpoint)
        return False
    return True


def _announce_bundled(name: str, folder: Path, hub_error: str, expected: bool) -> None:
    """Say once per process and checkpoint that the shipped copy is used: at INFO where that
    is what the settings or the machine ask for (offline mode, ``local_files_only``, no
    network), at WARNING where the Hub answered with an error; later loads log at DEBUG."""
    if name in _ANNOUNCED:
        logger.debug("using the copy of %r shipped with jetfm (%s)", name, folder)
        return
    _ANNOUNCED.add(name)
    log = logger.info if expected else logger.warning
    log("using the copy of %r shipped with jetfm (%s); Hub: %s", name, folder, hub_error)


def resolve_pretrained(
    name_or_path: str | os.PathLike,
    revision: str | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
    force_download: bool = False,
    required: Sequence[str] = (CONFIG_NAME,),
) -> Path:
    """The local folder holding checkpoint ``name_or_path`` (see the module docstring).

    Args:
        name_or_path: a checkpoint folder, a Hub repo id (``org/name``) or a short name of one
            of the project's checkpoints (``mpm-flow-tiny``).
        revision: branch, tag or commit on the Hub (default: ``main``).
        cache_dir: Hugging Face cache (default: ``$HF_HUB_CACHE``).
        token: Hub token for private repositories.
        local_files_only: use the cache (or the bundled copy) only, no network.
        force_download: skip the cache and download again.
        required: files (relative paths) a cached snapshot must hold to count as complete.

    Raises:
        CheckpointError: nothing found; the message lists what was tried.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise CheckpointError(f"{name}: is a file; from_pretrained needs a checkpoint folder")
    if _looks_like_path(name):
        raise CheckpointError(f"{name}: no such checkpoint folder")
    repo_id = repo_id_for(name)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise CheckpointError(
            f"{name!r} is neither a checkpoint folder nor a valid Hub repo id ({err}); "
            f"known checkpoints: {', '.join(known_checkpoints())}"
        ) from None

    rev = revision or "main"
    shipped = _shipped_name(repo_id) if rev == "main" else None
    download = dict(
        repo_id=repo_id,
        revision=revision,
        cache_dir=cache_dir,
        token=token,
        allow_patterns=list(CHECKPOINT_PATTERNS),
        endpoint=hub_endpoint(),
    )
    tried = [f"{name}: not a local folder"]

    # 1. the Hugging Face cache (no network)
    if not force_download:
        try:
            folder = Path(snapshot_download(**download, local_files_only=True))
        except Exception as err:  # LocalEntryNotFoundError, IncompleteSnapshotError, ...
            logger.debug("no cached snapshot of %s: %s", repo_id, err)
            tried.append(f"Hugging Face cache: no complete snapshot of {repo_id}@{rev}")
        else:
            if _has(folder, required):
                logger.debug("using cached snapshot %s", folder)
                return folder
            tried.append(f"Hugging Face cache: snapshot {folder} lacks {list(required)}")

    # 2. the Hub
    hub_error: str | None = None
    no_hub = True  # whether the Hub was left out on purpose or could not be reached
    if local_files_only:
        hub_error = "skipped (local_files_only=True)"
    elif hub_offline():
        hub_error = "skipped: offline mode (HF_HUB_OFFLINE=1)"
    elif shipped and not hub_reachable():
        hub_error = (
            f"unreachable ({hub_endpoint()} did not answer within {_probe_timeout():g} s; "
            "not asked again in this process)"
        )
    else:
        no_hub = False
        try:
            folder = Path(
                snapshot_download(**download, force_download=force_download, etag_timeout=10)
            )
        except Exception as err:  # not found, gated, unauthorised, connection error, ...
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            hub_error = f"{type(err).__name__}: {first}"
            if type(err).__name__ in ("RepositoryNotFoundError", "GatedRepoError"):
                hub_error += " (no such repository, or a private/gated one: pass token=)"
        else:
            if _has(folder, required):
                return folder
            hub_error = f"repository {repo_id}@{rev} has no {list(required)}"
    tried.append(f"Hub {hub_endpoint()}: {hub_error}")

    # 3. the copy shipped with jetfm
    if shipped:
        folder = bundled_checkpoints()[shipped]
        _announce_bundled(shipped, folder, str(hub_error), expected=no_hub)
        return folder
    tried.append("no copy of it ships with jetfm")

    shipped_names = sorted(bundled_checkpoints())
    known = ", ".join(f"{n} (shipped)" if n in shipped_names else n for n in known_checkpoints())
    raise CheckpointError(
        f"cannot find checkpoint {name!r}. Tried:\n  - "
        + "\n  - ".join(tried)
        + f"\nKnown checkpoints: {known}. Pass a checkpoint folder, a Hub repo id (org/name) or "
        "a known name. To work without network set HF_HUB_OFFLINE=1: cached and shipped "
        "checkpoints still load."
    )


# --- safety checks ------------------------------------------------------------------------
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}  # fmt: skip
_MAX_HEADER = 100 * 1024 * 1024


def check_safetensors(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Validate a safetensors file without loading it; returns its tensor table.

    Checks the header length, that the header is JSON, every tensor's dtype, shape and byte
    range, and that the ranges tile the data section exactly (so a truncated or padded file,
    or flipped header bytes, are caught here with the file named, not deep inside torch).
    """
    path = Path(path)
    size = path.stat().st_size
    if size < 8:
        raise CheckpointError(f"{path}: truncated safetensors file ({size} bytes)")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n > min(size - 8, _MAX_HEADER):
            raise CheckpointError(
                f"{path}: corrupt or truncated safetensors file (header says {n} bytes, "
                f"the file has {size})"
            )
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: corrupt safetensors header (not JSON: {err})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    header.pop("__metadata__", None)
    spans = []
    for name, info in header.items():
        try:
            dtype, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
            numel = 1
            for dim in shape:
                numel *= int(dim)
            ok = (
                dtype in _DTYPE_BYTES
                and all(isinstance(d, int) and d >= 0 for d in shape)
                and 0 <= start <= end
                and end - start == numel * _DTYPE_BYTES[dtype]
            )
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise CheckpointError(f"{path}: corrupt safetensors header entry for tensor {name!r}")
        spans.append((start, end, name))
    spans.sort()
    position = 0
    for start, end, name in spans:
        if start != position:
            raise CheckpointError(
                f"{path}: corrupt safetensors header (tensor {name!r} does not start where the "
                "previous one ends)"
            )
        position = end
    if 8 + n + position != size:
        raise CheckpointError(
            f"{path}: {'truncated' if 8 + n + position > size else 'corrupt'} safetensors file "
            f"(expected {8 + n + position} bytes, found {size})"
        )
    return header


def check_checkpoint_folder(folder: str | os.PathLike) -> list[Path]:
    """Refuse folders that cannot be loaded safely; returns the safetensors files.

    Needs ``config.json`` and ``model.safetensors`` (or a safetensors index); a folder with
    only pickle weights (``pytorch_model.bin``, ``*.pt``, ``*.pkl`` ...) is refused, never
    unpickled.
    """
    folder = Path(folder)
    config = folder / CONFIG_NAME
    if not config.is_file():
        raise CheckpointError(f"{folder}: not a checkpoint folder (no {CONFIG_NAME})")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{config}: not valid JSON ({err})") from None
    single, index = folder / WEIGHTS_NAME, folder / WEIGHTS_INDEX_NAME
    if single.is_file():
        files = [single]
    elif index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            files = [folder / shard for shard in sorted(set(weight_map.values()))]
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{index}: not a valid safetensors index ({err})") from None
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{index}: shards missing from {folder}: {missing}")
    else:
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(
                f"{folder}: only pickle weights ({', '.join(pickles)}), refused: jetfm loads "
                f"{WEIGHTS_NAME} (safetensors) only, because unpickling can run arbitrary code. "
                "Convert it where you trust the file: load it with torch and save_pretrained() "
                "it again."
            )
        raise CheckpointError(f"{folder}: no {WEIGHTS_NAME} (safetensors weights)")
    for file in files:
        check_safetensors(file)
    return files


#: Fields transformers itself may write into any config (e.g. the Trainer sets ``use_cache``).
_GENERIC_CONFIG_FIELDS = {
    "architectures", "model_type", "transformers_version", "dtype", "torch_dtype", "use_cache",
    "tie_word_embeddings", "problem_type", "num_labels", "id2label", "label2id",
    "output_hidden_states", "output_attentions", "return_dict", "pad_token_id",
    "bos_token_id", "eos_token_id", "is_encoder_decoder", "chunk_size_feed_forward",
}  # fmt: skip
#: Records current jetfm code stores on a config outside ``JetFMConfig.__init__``
#: (``config.finetuning``, see :mod:`jetfm.finetuning`); extend when adding one.
JETFM_RECORD_FIELDS = {"finetuning"}


def unknown_config_fields(config_file: str | os.PathLike, config_class: type) -> list[str]:
    """Fields of ``config.json`` that ``config_class`` does not know (a newer jetfm wrote it)."""
    from transformers import PretrainedConfig

    saved = json.loads(Path(config_file).read_text(encoding="utf-8"))
    known = set(config_class().to_dict()) | set(PretrainedConfig().to_dict())
    known |= _GENERIC_CONFIG_FIELDS | JETFM_RECORD_FIELDS
    return sorted(k for k in set(saved) - known if not k.startswith("_"))


def warn_unknown_config_fields(config_file: str | os.PathLike, config_class: type) -> list[str]:
    """Warn (``UserWarning`` + log) about fields a newer jetfm wrote; returns them."""
    from jetfm.version import __version__

    unknown = unknown_config_fields(config_file, config_class)
    if unknown:
        message = (
            f"{config_file}: fields unknown to jetfm {__version__} are kept but ignored: "
            f"{unknown} (written by a newer jetfm? `pip install -U jetfm`)"
        )
        warnings.warn(message, UserWarning, stacklevel=3)
        logger.warning(message)
    return unknown


# --- from_pretrained / save_pretrained / push_to_hub --------------------------------------
def remember_processor(model: Any, folder: Path) -> None:
    """Keep the checkpoint's ``preprocessor_config.json`` (its normalisation statistics) on a
    loaded model as ``model.preprocessor_config``, so that ``save_pretrained`` writes it
    again: the statistics belong to the weights that learnt on them."""
    file = folder / PROCESSOR_NAME
    if file.is_file():
        try:
            model.preprocessor_config = json.loads(file.read_text())
        except ValueError as err:
            raise CheckpointError(f"{file}: not valid JSON ({err})") from err


class HubMixin:
    """Put first in the bases of a transformers class (``PreTrainedModel`` or
    ``FeatureExtractionMixin``) so that ``from_pretrained`` resolves names with
    :func:`resolve_pretrained` and, for models, checks the weights before loading them.

    Models are loaded from safetensors only, in float32 unless ``dtype`` is given (so a
    checkpoint stored in float16 comes back as float32), never with remote code.
    """

    #: file that must exist (relative to the folder + ``subfolder``); None: by class kind.
    hub_required_file: str | None = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args, **kwargs):
        from transformers import PreTrainedModel

        if kwargs.pop("trust_remote_code", None):
            raise CheckpointError(
                f"{pretrained_model_name_or_path}: trust_remote_code is refused; jetfm never "
                "runs code shipped with a checkpoint"
            )
        is_model = issubclass(cls, PreTrainedModel)
        subfolder = kwargs.get("subfolder") or ""
        main_file = cls.hub_required_file or (CONFIG_NAME if is_model else PROCESSOR_NAME)
        required = str(Path(subfolder) / main_file) if subfolder else main_file
        root = resolve_pretrained(
            pretrained_model_name_or_path,
            revision=kwargs.pop("revision", None),
            cache_dir=kwargs.pop("cache_dir", None),
            token=kwargs.pop("token", None),
            local_files_only=kwargs.pop("local_files_only", False),
            force_download=kwargs.pop("force_download", False),
            required=(required,),
        )
        kwargs.pop("proxies", None)
        folder = root / subfolder
        if is_model:
            if kwargs.get("use_safetensors") is False:
                raise CheckpointError(f"{folder}: use_safetensors=False is refused (no pickles)")
            kwargs["use_safetensors"] = True
            check_checkpoint_folder(folder)
            if kwargs.get("config") is None:
                warn_unknown_config_fields(folder / CONFIG_NAME, cls.config_class)
            if "dtype" not in kwargs and "torch_dtype" not in kwargs:
                import torch

                kwargs["dtype"] = torch.float32
        elif not (folder / main_file).is_file():
            raise CheckpointError(f"{folder}: no {main_file}")
        loaded = super().from_pretrained(str(root), *args, local_files_only=True, **kwargs)
        if is_model:
            model = loaded[0] if isinstance(loaded, tuple) else loaded
            cls._complete_from_folder(model, folder)
            remember_processor(model, folder)
        return loaded

    @classmethod
    def _complete_from_folder(cls, model: Any, folder: Path) -> None:
        """Called after a model is loaded from ``folder``: load what lives beside
        ``model.safetensors`` (the MPM model's decoder in a release). Nothing by default."""


__all__ = [
    "CHECKPOINT_PATTERNS",
    "DEFAULT_HUB_ORG",
    "HUB_ORG_ENV",
    "HubMixin",
    "PUBLISHED_CHECKPOINTS",
    "bundled_checkpoints",
    "check_checkpoint_folder",
    "check_safetensors",
    "hub_endpoint",
    "hub_offline",
    "hub_org",
    "hub_reachable",
    "known_checkpoints",
    "repo_id_for",
    "resolve_pretrained",
    "unknown_config_fields",
    "warn_unknown_config_fields",
]
