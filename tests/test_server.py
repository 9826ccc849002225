"""viwo serve (design §15): every method over a real loopback WebSocket, auth, jobs, cancel, isolation,
reconnect, files, binary frames, bad input."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from server_helpers import FOREVER, TOKEN_A, TOKEN_B, Rpc, RpcFailure, config, png_bytes, run, served

from viwoscript.opcodes import opcode
from viwoscript.server.notify import parse_binary_frame

TEST_OPS: list = []


@opcode("test.preview", returns="null", pure=False, into=TEST_OPS)
def _preview(ev):
    """Emit a preview image (a 4×2 green picture)."""
    import numpy as np

    from viwoscript.values import Image

    ev.runtime.emit({"type": "preview", "image": Image(np.full((2, 4, 3), (0, 255, 0), np.uint8), {}), "step": 1})


@opcode("test.models_id", returns="number", pure=False, into=TEST_OPS)
def _models_id(ev):
    """The identity of this Runtime's model manager."""
    return id(ev.runtime.models)


def test_jobs_share_one_model_manager(tmp_path):
    async def go():
        async with served(config(tmp_path, runtime_kwargs={"opcodes": TEST_OPS})) as (client, server):
            rpc = await Rpc.connect(client)
            a = await rpc.call("execute_script", script="(test.models_id)")
            b = await rpc.call("execute_script", script="(test.models_id)")
            assert a["result"] == b["result"] == id(server.model_manager())
            await rpc.close()

    run(go())


def test_import_viwoscript_does_not_load_aiohttp():
    code = ("import sys, viwoscript, viwoscript.cli, viwoscript.server, viwoscript.server.command; "
            "print('aiohttp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- auth ----------------------------------------------------------------------------------------------
def test_every_route_needs_the_token(tmp_path):
    async def go():
        async with served(config(tmp_path)) as (client, _):
            for path in ("/", "/api/health", "/blobs/" + "0" * 64 + ".png", "/rpc", "/anything.js"):
                r = await client.get(path)
                assert r.status == 401, path
                r = await client.get(path + "?token=wrong-token")
                assert r.status == 401, path
            r = await client.post("/blobs", data=png_bytes())
            assert r.status == 401
            from aiohttp import WSServerHandshakeError

            with pytest.raises(WSServerHandshakeError) as e:
                await client.ws_connect("/rpc")
            assert e.value.status == 401
            r = await client.get("/api/health", headers={"Authorization": f"Bearer {TOKEN_A}"})
            assert r.status == 200 and (await r.json())["user"] == "alice"
            r = await client.get(f"/api/health?token={TOKEN_B}")
            assert (await r.json())["user"] == "bob"

    run(go())


def test_the_page_keeps_the_token_in_a_cookie(tmp_path):
    async def go():
        async with served(config(tmp_path)) as (client, _):
            r = await client.get(f"/?token={TOKEN_A}")
            assert r.status == 200 and "text/html" in r.headers["Content-Type"]
            assert client.session.cookie_jar.filter_cookies(client.make_url("/"))["viwo_token"].value == TOKEN_A
            r = await client.get("/api/health")  # the cookie alone
            assert r.status == 200
            ws = await client.ws_connect("/rpc")  # the upgrade with the cookie alone
            await ws.close()

    run(go())


def test_origin_check(tmp_path):
    async def go():
        sc = config(tmp_path, allowed_origins=["http://ui.example:5173"])
        async with served(sc) as (client, _):
            h = {"Authorization": f"Bearer {TOKEN_A}"}
            own = f"http://{client.host}:{client.port}"
            assert (await client.get("/api/health", headers={**h, "Origin": own})).status == 200
            assert (await client.get("/api/health", headers={**h, "Origin": "http://ui.example:5173"})).status == 200
            r = await client.get("/api/health", headers={**h, "Origin": "http://evil.example"})
            assert r.status == 403
            from aiohttp import WSServerHandshakeError

            with pytest.raises(WSServerHandshakeError) as e:
                await client.ws_connect(f"/rpc?token={TOKEN_A}", headers={"Origin": "http://evil.example"})
            assert e.value.status == 403

    run(go())


def test_non_loopback_needs_an_explicit_token(tmp_path):
    from viwoscript.config import Config, ConfigError
    from viwoscript.server.config import server_config

    sc = server_config(Config(cwd=tmp_path), host="0.0.0.0")
    with pytest.raises(ConfigError, match="explicit|generated"):
        sc.check_exposure()
    server_config(Config(cwd=tmp_path), host="0.0.0.0", token="a-long-token").check_exposure()
    local = server_config(Config(cwd=tmp_path))
    local.check_exposure()
    assert local.url().startswith("http://127.0.0.1:8080/?token=") and len(local.url()) > 40


def test_server_table_in_viwo_toml(tmp_path):
    from viwoscript.config import ConfigError, load_config
    from viwoscript.server.config import server_config

    (tmp_path / "imgs").mkdir()
    path = tmp_path / "viwo.toml"
    path.write_text('[server]\nport = 9001\nusers = { alice = "alice-token", bob = "bob-token-x" }\n'
                    'roots = ["imgs"]\nmax_upload_size = 2048\nmax_queued_jobs = 3\n'
                    'allowed_origins = ["http://localhost:5173"]\nlimits = { gas = 5000, timeout = 9 }\n'
                    'grants = [{ type = "diffusers.generate", params = { max_steps = 4 } }]\n')
    sc = server_config(load_config(path))
    assert sc.port == 9001 and sc.users == ["alice", "bob"] and sc.explicit_token
    assert sc.roots == [(tmp_path / "imgs").resolve()] and sc.max_upload_size == 2048 and sc.max_queued_jobs == 3
    assert sc.limits.gas == 5000 and sc.limits.timeout == 9
    assert sc.grants == [{"type": "diffusers.generate", "params": {"max_steps": 4}}]
    path.write_text("[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match="server.prot"):
        server_config(load_config(path))


# --- methods -----------------------------------------------------------------------------------------
def test_metadata_and_check(tmp_path):
    async def go():
        async with served(config(tmp_path)) as (client, _):
            rpc = await Rpc.connect(client)
            ops = await rpc.call("get_opcodes")
            assert isinstance(ops, list) and {"opcode", "label", "category", "parameters", "returnType"} <= set(ops[0])
            caps = await rpc.call("get_capability_metadata")
            assert "diffusers.generate" in {c["type"] for c in caps}
            assert await rpc.call("check_script", script="(+ 1 2)") == []
            diags = await rpc.call("check_script", script=["std.seq", ["+", 1, 2], ["nosuch.op", 1]])
            assert [d["kind"] for d in diags] == ["NameError"] and diags[0]["path"] == [2]
            diags = await rpc.call("check_script", script="(+ 1")
            assert diags[0]["kind"] == "SyntaxError" and diags[0]["line"] == 1
            await rpc.close()

    run(go())


def test_execute_submit_get_list(tmp_path):
    async def go():
        async with served(config(tmp_path)) as (client, _):
            rpc = await Rpc.connect(client, client_id="tab-1")
            rec = await rpc.call("execute_script", script="(+ 1 (std.arg 0))", args=[41])
            assert rec["status"] == "done" and rec["result"] == 42 and rec["images"] == []
            assert rec["created"] <= rec["started"] <= rec["finished"]
            rec = await rpc.call("execute_script", script=["+", 1, 2])
            assert rec["result"] == 3
            assert rpc.statuses(rec["job"]) == ["queued", "running", "done"]
            # a failing script is a job with status error, not a JSON-RPC error
            rec = await rpc.call("execute_script", script=["std.seq", 1, ["+", 1, "a"]])
            assert rec["status"] == "error" and "result" not in rec
            err = rec["error"]
            assert err["type"] == "ArgumentError" and err["path"] == [2] and err["line"] == 1 and err["col"] == 16
            assert set(err) == {"type", "message", "line", "col", "hint", "path"}
            rec = await rpc.call("execute_script", script="(std.seq\n  (std.throw \"boom\"))")
            assert rec["status"] == "error" and rec["error"]["line"] == 2 and "boom" in rec["error"]["message"]
            sub = await rpc.call("submit_script", script="(* 6 7)")
            assert sub["status"] == "queued" and isinstance(sub["job"], str)
            await rpc.wait_status(sub["job"], "done")
            assert (await rpc.call("get_job", job=sub["job"]))["result"] == 42
            again = await rpc.call("submit_script", script="(* 6 7)", idempotency_key="k1")
            same = await rpc.call("submit_script", script="(* 6 7)", idempotency_key="k1")
            assert again["job"] == same["job"]
            jobs = await rpc.call("list_jobs")
            assert jobs[0]["job"] == again["job"] and len(jobs) == 6
            assert len(await rpc.call("list_jobs", status="error")) == 2
            other = await Rpc.connect(client, client_id="tab-2")
            assert await other.call("list_jobs") == []
            assert len(await other.call("list_jobs", all=True)) == 6
            with pytest.raises(RpcFailure) as e:
                await rpc.call("get_job", job="no-such-job")
            assert e.value.code == -32004
            with pytest.raises(RpcFailure) as e:
                await rpc.call("cancel_job", job="no-such-job")
            assert e.value.code == -32004
            # a client's gas is clamped to the server's maximum, never refused
            rec = await rpc.call("execute_script", script="(+ 1 1)", gas=10**15)
            assert rec["status"] == "done"
            rec = await rpc.call("execute_script", script=FOREVER, gas=1000)
            assert rec["status"] == "error" and rec["error"]["type"] == "LimitError"
            await rpc.close()
            await other.close()

    run(go())


def test_plugin_rpc_and_files(tmp_path):
    async def go():
        async with served(config(tmp_path)) as (client, _):
            rpc = await Rpc.connect(client)
            out = await rpc.call("plugin_rpc", method="diffusers.generate",
                                 params={"prompt": "a red comet", "width": 64, "height": 72, "seed": 7, "steps": 2})
            assert out["seed"] == 7 and out["width"] == 64 and out["image_url"].startswith("/blobs/")
            r = await client.get(out["image_url"], headers={"Authorization": f"Bearer {TOKEN_A}"})
            assert r.status == 200 and r.headers["Content-Type"] == "image/png"
            data = await r.read()
            assert data.startswith(b"\x89PNG") and b"viwo" in data  # metadata embedded
            progress = [n for n in rpc.notes if n["method"] == "job.progress" and n["params"]["job"] == out["job"]]
            assert [p["params"]["step"] for p in progress] == [1, 2]
            # bob cannot read alice's file
            r = await client.get(out["image_url"], headers={"Authorization": f"Bearer {TOKEN_B}"})
            assert r.status == 404
            with pytest.raises(RpcFailure) as e:
                await rpc.call("plugin_rpc", method="diffusers.generate", params={"prompt": "x", "width": 3})
            assert e.value.code == -32000 and e.value.error["data"]["type"] == "ArgumentError"
            with pytest.raises(RpcFailure) as e:
                await rpc.call("plugin_rpc", method="nosuch.cap", params={})
            assert e.value.code == -32602
            # explicit TYPE.method
            out = await rpc.call("plugin_rpc", method="diffusers.generate.textToImage",
                                 params={"prompt": "p", "width": 64, "height": 64, "seed": 1, "steps": 1})
            assert out["seed"] == 1
            # a job returning images: result entries and the images list
            rec = await rpc.call("execute_script", script='(obj.get (std.call_method (get_capability '
                                 '"diffusers.generate") "textToImage" "x" {"width" 64 "height" 64 "steps" 1 '
                                 '"seed" 3}) "image")')
            assert rec["status"] == "done" and rec["result"]["type"] == "image"
            assert rec["images"] == [{k: rec["result"][k] for k in ("sha256", "url", "width", "height")}]
            await rpc.close()

    run(go())


def test_uploads_and_blob_sources(tmp_path):
    async def go():
        async with served(config(tmp_path, max_upload_size=4096)) as (client, _):
            ha, hb = {"Authorization": f"Bearer {TOKEN_A}"}, {"Authorization": f"Bearer {TOKEN_B}"}
            r = await client.post("/blobs", data=png_bytes(8, 6), headers=ha)
            assert r.status == 201
            up = await r.json()
            assert up["url"] == f"/blobs/{up['sha256']}.png" and (up["width"], up["height"]) == (8, 6)
            r = await client.get(up["url"], headers=ha)
            assert await r.read() == png_bytes(8, 6)
            assert (await client.get(up["url"], headers=hb)).status == 404
            # multipart works too
            import aiohttp

            form = aiohttp.FormData()
            form.add_field("file", png_bytes(2, 2), filename="a.png", content_type="image/png")
            r = await client.post("/blobs", data=form, headers=ha)
            assert r.status == 201
            assert (await client.post("/blobs", data=b"not an image", headers=ha)).status == 415
            assert (await client.post("/blobs", data=b"\0" * 200_000, headers=ha)).status == 413
            rpc = await Rpc.connect(client)
            rec = await rpc.call("execute_script", script=f'(image.load "blob:{up["sha256"]}")')
            assert rec["status"] == "done" and (rec["result"]["width"], rec["result"]["height"]) == (8, 6)
            rec = await rpc.call("execute_script", script=f'(std.seq (canvas.layer.create "a" "A") '
                                 f'(canvas.layer.load_image "a" "blob:{up["sha256"]}") (canvas.composite))')
            assert rec["status"] == "done", rec
            bob = await Rpc.connect(client, token=TOKEN_B)
            rec = await bob.call("execute_script", script=f'(image.load "blob:{up["sha256"]}")')
            assert rec["status"] == "error" and "no upload" in rec["error"]["message"]
            # store methods: save an upload as an entity, list, get
            saved = await rpc.call("save_image", name="red", image=f"blob:{up['sha256']}", metadata={"k": 1})
            assert saved["name"] == "red" and saved["metadata"]["k"] == 1
            assert [i["id"] for i in await rpc.call("list_images")] == [saved["id"]]
            got = await rpc.call("get_image", id=saved["id"])
            assert got["url"] == saved["url"]
            assert (await client.get(got["url"], headers=ha)).status == 200
            assert await bob.call("list_images") == []
            with pytest.raises(RpcFailure):
                await bob.call("get_image", id=saved["id"])
            with pytest.raises(RpcFailure):
                await bob.call("save_image", name="stolen", image=up["sha256"])
            await rpc.close()
            await bob.close()

    run(go())


def test_templates(tmp_path):
    async def go():
        async with served(config(tmp_path)) as (client, _):
            rpc = await Rpc.connect(client)
            t = await rpc.call("save_template", template={"name": "double", "script": ["*", 2, ["std.arg", 0]],
                                                          "parameters": [{"name": "n", "type": "number"}]})
            assert t["name"] == "double"
            assert [x["name"] for x in await rpc.call("list_templates")] == ["double"]
            assert (await rpc.call("get_template", name="double"))["script"] == ["*", 2, ["std.arg", 0]]
            with pytest.raises(RpcFailure) as e:
                await rpc.call("save_template", template={"name": "bad", "script": ["nosuch.op"]})
            assert e.value.code == -32602
            bob = await Rpc.connect(client, token=TOKEN_B)
            assert await bob.call("list_templates") == []
            assert await bob.call("delete_template", name="double") == {"deleted": False}
            assert await rpc.call("delete_template", name="double") == {"deleted": True}
            await rpc.close()
            await bob.close()

    run(go())


# --- cancel, isolation, reconnect ------------------------------------------------------------------------
def test_cancel_queued_and_running(tmp_path):
    async def go():
        async with served(config(tmp_path)) as (client, _):
            rpc = await Rpc.connect(client)
            long = await rpc.call("submit_script", script=FOREVER)
            await rpc.wait_status(long["job"], "running")
            queued = await rpc.call("submit_script", script="(+ 1 2)")
            rec = await rpc.call("cancel_job", job=queued["job"])
            assert rec["status"] == "cancelled"
            rec = await rpc.call("cancel_job", job=long["job"])
            await rpc.wait_status(long["job"], "cancelled")
            assert (await rpc.call("get_job", job=long["job"]))["status"] == "cancelled"
            after = await rpc.call("execute_script", script="(+ 2 2)")
            assert after["result"] == 4
            assert rpc.statuses(queued["job"]) == ["queued", "cancelled"]  # never running
            # cancelling a finished job changes nothing
            assert (await rpc.call("cancel_job", job=after["job"]))["status"] == "done"
            # execute_script waiting on a job cancelled from another socket returns the cancelled record
            other = await Rpc.connect(client)
            waiting = asyncio.ensure_future(rpc.call("execute_script", script=FOREVER))
            known = {n["params"]["job"] for n in rpc.notes}
            fresh = []
            await rpc.until(lambda: fresh.extend(n["params"]["job"] for n in rpc.notes if n["method"] == "job.status"
                                                 and n["params"]["status"] == "running"
                                                 and n["params"]["job"] not in known) or fresh)
            await other.call("cancel_job", job=fresh[0])
            assert (await waiting)["status"] == "cancelled"
            await rpc.close()
            await other.close()

    run(go())


def test_isolation_between_users(tmp_path):
    async def go():
        async with served(config(tmp_path, slots=2)) as (client, _):
            alice = await Rpc.connect(client, TOKEN_A, client_id="same-id")
            bob = await Rpc.connect(client, TOKEN_B, client_id="same-id")
            job = await alice.call("submit_script", script=FOREVER)
            await alice.wait_status(job["job"], "running")
            for method in ("get_job", "cancel_job"):
                with pytest.raises(RpcFailure) as e:
                    await bob.call(method, job=job["job"])
                assert e.value.code == -32004
            assert await bob.call("list_jobs", all=True) == []
            rec = await bob.call("execute_script", script="(+ 1 1)")
            assert rec["result"] == 2
            await alice.call("cancel_job", job=job["job"])
            await alice.wait_status(job["job"], "cancelled")
            assert not [n for n in bob.notes if n["params"].get("job") == job["job"]]
            assert not [n for n in alice.notes if n["params"].get("job") == rec["job"]]
            await alice.close()
            await bob.close()

    run(go())


def test_reconnect_resends_unfinished_jobs(tmp_path):
    async def go():
        async with served(config(tmp_path)) as (client, _):
            first = await Rpc.connect(client, client_id="tab-9")
            running = await first.call("submit_script", script=FOREVER)
            await first.wait_status(running["job"], "running")
            queued = await first.call("submit_script", script="(+ 1 2)")
            await first.close()
            second = await Rpc.connect(client, client_id="tab-9")
            await second.until(lambda: len(second.notes) >= 2)
            assert [(n["params"]["job"], n["params"]["status"]) for n in second.notes[:2]] == [
                (running["job"], "running"), (queued["job"], "queued")]
            other_tab = await Rpc.connect(client, client_id="tab-10")
            await second.call("cancel_job", job=running["job"])
            await second.wait_status(queued["job"], "done")  # events of tab-9's jobs reach tab-9 again
            assert other_tab.notes == []
            await second.close()
            await other_tab.close()

    run(go())


def test_queue_limit_per_client(tmp_path):
    async def go():
        async with served(config(tmp_path, max_queued_jobs=2)) as (client, _):
            rpc = await Rpc.connect(client)
            long = await rpc.call("submit_script", script=FOREVER)
            await rpc.wait_status(long["job"], "running")
            await rpc.call("submit_script", script="1")
            await rpc.call("submit_script", script="2")
            with pytest.raises(RpcFailure) as e:
                await rpc.call("submit_script", script="3")
            assert e.value.code == -32002 and e.value.error["data"]["max_queued_jobs"] == 2
            await rpc.call("cancel_job", job=long["job"])
            await rpc.close()

    run(go())


def test_binary_preview_frames(tmp_path):
    async def go():
        async with served(config(tmp_path, runtime_kwargs={"opcodes": TEST_OPS})) as (client, _):
            rpc = await Rpc.connect(client)
            bob = await Rpc.connect(client, TOKEN_B)
            rec = await rpc.call("execute_script", script="(test.preview)")
            assert rec["status"] == "done"
            await rpc.until(lambda: rpc.frames)
            header, data = parse_binary_frame(rpc.frames[0])
            assert header["kind"] == "preview" and header["job"] == rec["job"] and header["mime"] == "image/png"
            assert header["seq"] == 1 and (header["width"], header["height"]) == (4, 2)
            assert data.startswith(b"\x89PNG")
            assert bob.frames == []
            await rpc.close()
            await bob.close()

    run(go())


# --- bad input -------------------------------------------------------------------------------------------
def test_bad_input_gets_errors_and_keeps_the_socket(tmp_path):
    async def go():
        async with served(config(tmp_path, max_message_size=2048)) as (client, _):
            rpc = await Rpc.connect(client)
            assert (await rpc.raw("{not json"))["error"]["code"] == -32700
            assert (await rpc.raw("[]"))["error"]["code"] == -32600
            assert (await rpc.raw("42"))["error"]["code"] == -32600
            assert (await rpc.raw('{"id": 1, "method": "get_opcodes"}'))["error"]["code"] == -32600
            assert (await rpc.raw(b"\x00\x01"))["error"]["code"] == -32600
            big = json.dumps({"jsonrpc": "2.0", "id": 5, "method": "check_script", "params": {"script": "x" * 5000}})
            assert (await rpc.raw(big))["error"]["code"] == -32600
            for method, params, code in [("nope", {}, -32601), ("get_job", {}, -32602), ("get_job", {"job": 5}, -32602),
                                         ("get_job", {"job": "x", "extra": 1}, -32602), ("get_job", [1], -32602),
                                         ("execute_script", {"script": "1", "gas": "lots"}, -32602),
                                         ("list_jobs", {"limit": 0}, -32602)]:
                answer = await rpc.request(method, params)
                assert answer["error"]["code"] == code, (method, params, answer)
            n = len(rpc.unmatched)
            await rpc.ws.send_str(json.dumps([{"jsonrpc": "2.0", "id": "a", "method": "check_script",
                                               "params": {"script": "1"}},
                                              {"jsonrpc": "2.0", "method": "check_script", "params": {"script": "1"}},
                                              {"jsonrpc": "2.0", "id": "b", "method": "nope"}]))
            await rpc.until(lambda: len(rpc.unmatched) >= n + 2)
            batch = rpc.unmatched[n:]
            assert [(a["id"], "error" in a) for a in batch] == [("a", False), ("b", True)]
            assert (await rpc.call("execute_script", script="(+ 1 2)"))["result"] == 3  # socket still fine
            await rpc.close()

    run(go())


def test_health_and_placeholder_page(tmp_path):
    async def go():
        async with served(config(tmp_path)) as (client, _):
            r = await client.get(f"/api/health?token={TOKEN_A}")
            body = await r.json()
            assert body["status"] == "ok" and body["executor"] == "local" and body["slots"] == 1
            r = await client.get(f"/?token={TOKEN_A}")
            assert r.status == 200 and "<html" in (await r.text()).lower()
            r = await client.get(f"/../../etc/passwd?token={TOKEN_A}")
            assert r.status == 404
            r = await client.get(f"/rpc?token={TOKEN_A}")  # not an upgrade
            assert r.status == 400

    run(go())


def test_executors_awaited_job_by_job(tmp_path):
    """An executor without slot threads here (as a Ray executor would be) is awaited job by job."""
    from aiohttp.test_utils import TestClient, TestServer

    from viwoscript.executors.local import LocalExecutor
    from viwoscript.server.app import Server, make_app

    class Remote(LocalExecutor):
        run_in_slot = None

    async def go():
        sc = config(tmp_path)
        server = Server(sc, executor=Remote(slots=1))
        async with TestServer(make_app(sc, server=server), host="127.0.0.1") as ts, TestClient(ts) as client:
            rpc = await Rpc.connect(client)
            assert (await rpc.call("execute_script", script="(+ 1 2)"))["result"] == 3
            long = await rpc.call("submit_script", script=FOREVER)
            queued = await rpc.call("submit_script", script="(+ 2 2)")
            await rpc.wait_status(long["job"], "running")
            await rpc.call("cancel_job", job=long["job"])
            await rpc.wait_status(queued["job"], "done")
            assert (await rpc.call("get_job", job=long["job"]))["status"] == "cancelled"
            await rpc.close()

    run(go())


def test_viwo_serve_refuses_bad_setups(tmp_path):
    """The command: another address without a token, an unknown [server] key, a port in use → exit 2."""
    import socket

    def serve(*args):
        return subprocess.run([sys.executable, "-m", "viwoscript", "serve", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)

    out = serve("--host", "0.0.0.0", "--data", str(tmp_path / "d"))
    assert out.returncode == 2 and "refusing to listen on 0.0.0.0" in out.stderr and "--token" in out.stderr
    (tmp_path / "viwo.toml").write_text("[server]\nprot = 1\n")
    out = serve("--data", str(tmp_path / "d"))
    assert out.returncode == 2 and "server.prot" in out.stderr and "port" in out.stderr
    (tmp_path / "viwo.toml").unlink()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        out = serve("--port", str(busy.getsockname()[1]), "--data", str(tmp_path / "d"))
    assert out.returncode == 2 and "cannot listen" in out.stderr
