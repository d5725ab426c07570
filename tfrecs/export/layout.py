"""TF Serving layout: ``<export_root>/<model_name>/<version>/``, written atomically, plus ``models.config``.

A version is written into a hidden temporary directory next to its final place
(``.tmp-<version>-<pid>-<random>``) and renamed into place only when complete, so a server
polling ``<model_name>/`` never sees a half-written version (TF Serving ignores names that
are not integers). An export that fails or is killed leaves no version directory; the
temporary directories of dead writers are removed by the next export of that model, which
says so on stderr ("starting clean"). A root that cannot be written (a path under a regular
file, no permission) or a full disk is one ``StorageError`` line naming the path, with the
temporary directory removed.

Example::

    path = write_version("saved_models", "two_tower", lambda tmp: save(tmp))    # .../two_tower/1
    write_models_config("saved_models")                 # saved_models/models.config
"""

import os
import re
import shutil
import uuid
from typing import Callable, List, Optional

from tfrecs.core.errors import StorageError
from tfrecs.pipelines.tfrecord_writer import is_storage_failure, notice, pid_alive, storage_error

_TEMP_PATTERN = re.compile(r"^\.tmp-(\d+)-(\d+)-[0-9a-f]+$")
MODELS_CONFIG = "models.config"


def model_versions(model_dir: str) -> List[int]:
    """Integer versions present in ``model_dir`` (sorted), ignoring anything else."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(
        int(name) for name in os.listdir(model_dir) if name.isdigit() and os.path.isdir(os.path.join(model_dir, name))
    )


def next_version(model_dir: str) -> int:
    """One more than the highest existing version (1 for a new model)."""
    versions = model_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def remove_stale_temporaries(model_dir: str) -> List[str]:
    """Deletes temporary directories left by exports whose process is gone; returns them."""
    removed = []
    if not os.path.isdir(model_dir):
        return removed
    for name in os.listdir(model_dir):
        match = _TEMP_PATTERN.match(name)
        if match and not pid_alive(int(match.group(2))):
            shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)
            removed.append(name)
    return removed


def check_model_name(model_name: str) -> None:
    """Raises ``ValueError`` unless ``model_name`` is a plain directory name TF Serving accepts."""
    if not model_name or not re.fullmatch(r"[A-Za-z0-9_.\-]+", model_name) or model_name.startswith("."):
        raise ValueError(f"model_name={model_name!r} must be a plain name of letters, digits, '_', '-' or '.'.")


def resolve_version(export_root: str, model_name: str, version: Optional[int]) -> int:
    """The version to write: ``version`` if free, else the next one.

    Raises:
        ValueError: ``version`` is not a positive integer or already exists (names the path).
    """
    check_model_name(model_name)
    model_dir = os.path.join(export_root, model_name)
    if version is None:
        return next_version(model_dir)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version={version!r} must be a positive integer (TF Serving versions are integers).")
    path = os.path.join(model_dir, str(version))
    if os.path.exists(path):
        raise ValueError(
            f"version {version} of model {model_name!r} already exists at {path}; pick another "
            f"version (next free: {next_version(model_dir)}) or remove it."
        )
    return version


def write_version(
    export_root: str, model_name: str, write: Callable[[str], None], version: Optional[int] = None
) -> str:
    """Runs ``write(temporary_dir)`` and renames the result to ``<root>/<model_name>/<version>``.

    Args:
        export_root: root of the TF Serving model base paths (e.g. ``saved_models``).
        model_name: model directory name.
        write: fills the directory it is given (SavedModel, assets, warmup file).
        version: integer version; default: next free one.

    Returns:
        The final version directory.

    Raises:
        ValueError: bad name, or the version exists (also if another writer took it meanwhile).
        StorageError: the root or the version cannot be written (names the path); nothing is
            left behind.
    """
    if os.path.exists(export_root) and not os.path.isdir(export_root):
        raise StorageError(f"{export_root}: the export root exists and is not a directory; choose another path")
    version = resolve_version(export_root, model_name, version)
    model_dir = os.path.join(export_root, model_name)
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as error:
        raise storage_error(model_dir, error, "create the export directory") from None
    for name in remove_stale_temporaries(model_dir):
        notice(f"removed {os.path.join(model_dir, name)}, the incomplete export of an interrupted run; starting clean")
    temporary = os.path.join(model_dir, f".tmp-{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    final = os.path.join(model_dir, str(version))
    try:
        os.makedirs(temporary)
        write(temporary)
        if os.path.exists(final):
            raise ValueError(f"version {version} of model {model_name!r} appeared at {final} while exporting.")
        os.rename(temporary, final)  # atomic on one file system
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if is_storage_failure(error):
            raise storage_error(final, error, "write the export") from None
        raise
    return final


def models_config_text(export_root: str, base_path_prefix: Optional[str] = "/models") -> str:
    """TF Serving ``--model_config_file`` text listing every model directory under ``export_root``.

    Args:
        export_root: directory holding ``<model_name>/<version>/`` trees.
        base_path_prefix: where ``export_root`` is mounted in the server (``/models`` in the
            Docker examples of docs/serving.md); None: the absolute local paths.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for name in sorted(os.listdir(export_root)):
        if not os.path.isdir(os.path.join(export_root, name)) or name.startswith("."):
            continue
        if not model_versions(os.path.join(export_root, name)):
            continue
        entry = config.model_config_list.config.add()
        entry.name = name
        base = (
            os.path.abspath(os.path.join(export_root, name))
            if base_path_prefix is None
            else f"{base_path_prefix.rstrip('/')}/{name}"
        )
        entry.base_path = base
        entry.model_platform = "tensorflow"
        entry.model_version_policy.latest.num_versions = 1
    return text_format.MessageToString(config)


def write_models_config(export_root: str, base_path_prefix: Optional[str] = "/models") -> str:
    """Writes ``<export_root>/models.config`` atomically (TF Serving may poll it); returns its path.

    Raises:
        StorageError: the file cannot be written (names it; the temporary file is removed).
    """
    path = os.path.join(export_root, MODELS_CONFIG)
    temporary = f"{path}.tmp-{os.getpid()}"
    text = models_config_text(export_root, base_path_prefix)
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except OSError as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise storage_error(path, error) from None
    return path


def directory_size(path: str) -> int:
    """Total bytes of the files under ``path``."""
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)
