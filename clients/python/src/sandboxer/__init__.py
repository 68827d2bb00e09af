"""Python client of Sandboxer: one isolated sandbox per chat.

>>> from sandboxer import Sandbox
>>> sbx = Sandbox.for_chat("web:42")
>>> sbx.exec("python3 -c 'print(6*7)'").stdout
'42\\n'
"""

from ._async import AsyncClient, AsyncFiles, AsyncSandbox, default_async_client
from ._sync import Client, Files, Sandbox, default_client
from .errors import (
    Busy,
    CommandFailed,
    Conflict,
    ContainerGone,
    FileNotFound,
    ImageNotFound,
    InternalError,
    InvalidChatId,
    InvalidJson,
    InvalidPath,
    InvalidRequest,
    MethodNotAllowed,
    NotADirectory,
    NotAFile,
    NotFound,
    PayloadTooLarge,
    RouteNotFound,
    RuntimeUnavailable,
    SandboxerError,
    SandboxNotFound,
    SandboxRuntimeError,
    ServerError,
    ServiceUnavailable,
    StoreConflict,
    StoreError,
    StoreUnavailable,
    Timeout,
    TransportError,
    Unauthorized,
)
from .models import ExecResult, FileEntry, FileWritten, SandboxInfo

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "AsyncFiles",
    "AsyncSandbox",
    "Busy",
    "Client",
    "CommandFailed",
    "Conflict",
    "ContainerGone",
    "ExecResult",
    "FileEntry",
    "FileNotFound",
    "FileWritten",
    "Files",
    "ImageNotFound",
    "InternalError",
    "InvalidChatId",
    "InvalidJson",
    "InvalidPath",
    "InvalidRequest",
    "MethodNotAllowed",
    "NotADirectory",
    "NotAFile",
    "NotFound",
    "PayloadTooLarge",
    "RouteNotFound",
    "RuntimeUnavailable",
    "Sandbox",
    "SandboxInfo",
    "SandboxNotFound",
    "SandboxRuntimeError",
    "SandboxerError",
    "ServerError",
    "ServiceUnavailable",
    "StoreConflict",
    "StoreError",
    "StoreUnavailable",
    "Timeout",
    "TransportError",
    "Unauthorized",
    "default_async_client",
    "default_client",
]
