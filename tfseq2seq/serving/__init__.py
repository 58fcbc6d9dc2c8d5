"""A small TensorFlow-Serving-compatible model server for tfseq2seq exports.

    from tfseq2seq.serving import serve
    handle = serve("export/g2p", "g2p", port=0, rest_api_port=0)
    ...
    handle.stop()

or ``python -m tfseq2seq.serving.app --model_name=g2p --model_base_path=export/g2p``.

The clients (``client``: ``RestClient``, ``GrpcClient``) import neither TensorFlow nor the
model code; this ``__init__`` imports nothing until a name is used.
"""

from tfseq2seq.util.lazy import lazy_exports, names_by_module

__getattr__ = lazy_exports(__name__, names_by_module({
    "app": ("serve", "ServerHandle", "main"),
    "status": ("StatusError", "HTTP_STATUS"),
    "client": ("RestClient", "GrpcClient", "ServingError"),
}))
