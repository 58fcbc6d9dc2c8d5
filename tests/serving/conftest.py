"""Servers shared by several serving test files, built once per session.

``parity_store``/``parity_server`` (the REST parity files test_rest_request_bodies.py,
test_rest_endpoints.py, test_rest_cors.py) and ``fuzz_server`` (test_fuzz_rest.py,
test_fuzz_grpc.py) each save stub SavedModels and start a server, so they are
session-scoped: split over several files, module-scoped copies would build and start
them once per file.  The names are distinct from the module-scoped ``store``/``server``/
``proc`` fixtures other files define; the files that share these alias them to their old
names in a module-scoped fixture. ``protos``, ``model``, ``compose``, ``k8s`` and
``dockerfile`` are serving/'s config files, parsed (serving_config_files.py), for
test_serving_configs.py and test_k8s_manifests.py.
"""

import pytest
from serving_config_files import load_compose, load_dockerfile, load_k8s, load_protos, served_model

from tfseq2seq.serving.app import serve

from server_fixtures import ServerProcess, build_store, build_stub

# Before the helper modules are first imported, so their asserts report like the tests' own.
pytest.register_assert_rewrite("fuzz_helpers", "rest_helpers")


@pytest.fixture(scope="session")
def parity_store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("parity_models"))


@pytest.fixture(scope="session")
def parity_server(parity_store):
    from rest_helpers import MAX_BYTES

    handle = serve(str(parity_store / "base"), "stub", port=0, rest_api_port=0, poll_seconds=0,
                   max_request_bytes=MAX_BYTES, max_batch_rows=64)
    yield handle
    handle.stop(grace=2)


@pytest.fixture(scope="session")
def fuzz_server(tmp_path_factory):
    import fuzz_helpers  # imports hypothesis, so only when a fuzz test needs it

    root = tmp_path_factory.mktemp("fuzz")
    build_stub(str(root / "base" / "1"))
    server = ServerProcess(root / "base", "stub", "--max_request_bytes", fuzz_helpers.MAX_BYTES,
                           "--max_batch_rows", fuzz_helpers.MAX_ROWS, "--poll_seconds", "0")
    yield server
    server.kill()


# serving/'s config files, parsed (test_serving_configs.py, test_k8s_manifests.py)
@pytest.fixture(scope="module")
def protos():
    return load_protos()


@pytest.fixture(scope="module")
def model(protos):
    return served_model(protos)


@pytest.fixture(scope="module")
def compose():
    return load_compose()


@pytest.fixture(scope="module")
def k8s():
    return load_k8s()


@pytest.fixture(scope="module")
def dockerfile():
    return load_dockerfile()
