"""fluvial.serialization: named serializers, stable input hashing and result storage.

- ``get_serializer`` / ``register_serializer``: the registry of ``(dumps, loads)``
  pairs: ``"msgpack"``, ``"json"``, ``"cloudpickle"`` and ``"compressed/<name>"``.
- ``hash_objects`` / ``hash_inputs`` / ``task_input_hash`` / ``source_hash``: cache keys
  that are the same in every process and after a restart.
- ``function_identity``: a task's ``module.qualname``, the same under ``python file.py``
  and when the file is imported.
- ``ResultStore``: results as files, written atomically, readable without knowing
  their serializer.

Nothing here depends on the rest of fluvial but ``fluvial._files`` (records are private
files); cloudpickle is imported on first use.
"""

from ._errors import HashError, ResultRecordError, SerializationError
from ._hashing import hash_inputs, hash_objects, source_hash, task_input_hash
from ._identity import file_module_name, function_identity, module_identity
from ._registry import (
    Serializer,
    dumps_with_fallback,
    get_serializer,
    register_lazy_serializer,
    register_serializer,
    serializer_names,
)
from .storage import FileSystemResultStore, RecordMeta, ResultStore, default_storage_dir

__all__ = [
    "FileSystemResultStore",
    "HashError",
    "RecordMeta",
    "ResultRecordError",
    "ResultStore",
    "SerializationError",
    "Serializer",
    "default_storage_dir",
    "dumps_with_fallback",
    "file_module_name",
    "function_identity",
    "get_serializer",
    "hash_inputs",
    "hash_objects",
    "module_identity",
    "register_lazy_serializer",
    "register_serializer",
    "serializer_names",
    "source_hash",
    "task_input_hash",
]
