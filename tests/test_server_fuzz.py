"""Fuzzing the RPC socket (hypothesis): whatever a client sends, only JSON-RPC answers come back — never an
internal error, a dropped socket or a stuck server."""

from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import TOKEN_A, Rpc, config, served

from viwoscript.limits import Limits
from viwoscript.server.methods import Call

METHODS = ["get_opcodes", "get_capability_metadata", "check_script", "execute_script", "submit_script", "get_job",
           "cancel_job", "list_jobs", "plugin_rpc", "list_images", "get_image", "save_image", "list_templates",
           "get_template", "save_template", "delete_template", "nope", ""]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
param_objects = st.dictionaries(st.sampled_from(["script", "args", "gas", "job", "name", "id", "image", "template",
                                                 "method", "params", "limit", "all", "status", "x"]),
                                json_values, max_size=4)
requests = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "2.0", "1.0", None]), "method": st.sampled_from(METHODS) | st.text(max_size=10)},
    optional={"id": st.none() | st.integers() | st.text(max_size=5) | st.booleans() | st.lists(st.integers()),
              "params": param_objects | json_values})
frames = (st.text(max_size=200)
          | requests.map(json.dumps)
          | st.lists(requests, max_size=3).map(json.dumps)
          | json_values.map(json.dumps))


def check_answer(text):
    if text is None:
        return
    data = json.loads(text)
    items = data if isinstance(data, list) else [data]
    assert items
    for item in items:
        assert item["jsonrpc"] == "2.0" and "id" in item
        assert ("result" in item) != ("error" in item)
        if "error" in item:
            assert isinstance(item["error"]["code"], int) and item["error"]["code"] != -32603, item


def test_fuzz_frames(tmp_path):
    loop = asyncio.new_event_loop()
    sc = config(tmp_path, grants=[], limits=Limits(gas=20_000, timeout=5), max_message_size=4096)
    cm = served(sc)
    client, server = loop.run_until_complete(cm.__aenter__())
    call = Call(server, "alice", "fuzz")
    rpc = loop.run_until_complete(Rpc.connect(client, TOKEN_A))
    try:
        @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
        @given(frames)
        def direct(frame):
            check_answer(loop.run_until_complete(asyncio.wait_for(server.dispatch(call, frame), 60)))

        direct()

        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(frames | st.binary(max_size=50), min_size=1, max_size=5))
        def over_the_socket(batch):
            async def go():
                for frame in batch:
                    if isinstance(frame, bytes):
                        await rpc.ws.send_bytes(frame)
                    else:
                        await rpc.ws.send_str(frame)
                assert (await rpc.call("check_script", script="(+ 1 2)")) == []  # still answering

            loop.run_until_complete(go())

        over_the_socket()
        for item in rpc.unmatched:
            check_answer(json.dumps(item))
        assert not rpc.ws.closed
    finally:
        loop.run_until_complete(rpc.close())
        loop.run_until_complete(cm.__aexit__(None, None, None))
        loop.close()
