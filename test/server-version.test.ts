/**
 * The coordinator and the agent refuse a nats-server older than 2.11 when they
 * connect, naming the version found and the minimum. No real old server is
 * built here (only the pinned current one is), so a stand-in on a loopback
 * port speaks the first lines of the NATS protocol (INFO, then PONG to the
 * client's PING) with an old version in its INFO: exactly what the check
 * reads. Everything else the processes do runs against real servers elsewhere.
 */
import { createServer, type Server, type Socket } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_MAIN, COORDINATOR_MAIN } from "../scripts/lib/paths.js";
import { MIN_SERVER_VERSION, parseServerVersion, serverVersionError } from "../services/shared/src/index.js";
import { freePort } from "./helpers/nats-server.js";
import { Proc } from "./helpers/stack.js";

/** Answers like a nats-server of `version` until the client's CONNECT; then keeps quiet. */
async function fakeNatsServer(version: string): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    const info = { server_id: "FAKE", server_name: "fake", version, proto: 1, go: "go1.19", host: "127.0.0.1", port: 0, headers: true, max_payload: 1048576, jetstream: true };
    sock.write(`INFO ${JSON.stringify(info)}\r\n`);
    sock.on("data", (buf) => {
      if (buf.toString().includes("PING")) sock.write("PONG\r\n");
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `nats://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("server version check", () => {
  it("parses versions and accepts 2.11 and later only", () => {
    expect(parseServerVersion("2.15.2")).toEqual([2, 15, 2]);
    expect(parseServerVersion("v2.11.0-RC.1")).toEqual([2, 11, 0]);
    expect(parseServerVersion("banana")).toBeNull();
    expect(serverVersionError("2.11.0", "u")).toBeNull();
    expect(serverVersionError("2.15.2", "u")).toBeNull();
    expect(serverVersionError("3.0.0", "u")).toBeNull();
    expect(serverVersionError("2.10.29", "nats://x:1")).toBe(
      `nats-server at nats://x:1 is version 2.10.29; nats-deploy needs ${MIN_SERVER_VERSION} or later (upgrade the server; scripts/tools.sh builds the tested one)`,
    );
    expect(serverVersionError("1.99.99", "u")).toMatch(/version 1\.99\.99; nats-deploy needs 2\.11\.0 or later/);
    expect(serverVersionError(undefined, "u")).toMatch(/not a version; nats-deploy needs 2\.11\.0 or later/);
  });

  describe("processes against a 2.9.10 server", () => {
    let fake: Awaited<ReturnType<typeof fakeNatsServer>>;
    let dir: string;
    beforeAll(async () => {
      fake = await fakeNatsServer("2.9.10");
      dir = await mkdtemp(join(tmpdir(), "server-version-"));
    });
    afterAll(async () => {
      await fake?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    async function exitOf(proc: Proc): Promise<{ code: number | null; logs: string }> {
      proc.start();
      const code = await proc.exited();
      return { code, logs: proc.logs() };
    }

    it("the coordinator exits 2 naming the version found and the minimum", async () => {
      const proc = new Proc("coordinator", COORDINATOR_MAIN, { NATS_URL: fake.url, DEPLOY_DEV_MODE: "1", DEPLOY_GRPC_LISTEN: `127.0.0.1:${await freePort()}` });
      const { code, logs } = await exitOf(proc);
      expect(code, logs).toBe(2);
      expect(logs).toContain("deploy-coordinator: nats-server at 127.0.0.1:");
      expect(logs).toContain("is version 2.9.10; nats-deploy needs 2.11.0 or later");
      expect(logs, "no stack trace for an operator's error").not.toMatch(/\n\s+at /);
    });

    it("the agent exits 2 naming the version found and the minimum", async () => {
      const proc = new Proc("agent", AGENT_MAIN, {
        NATS_URL: fake.url,
        DEPLOY_DEV_MODE: "1",
        DEPLOY_AGENT_ID: "a1",
        DEPLOY_ENVIRONMENT: "e",
        DEPLOY_AGENT_APPS: JSON.stringify({ web: { deploy: "/bin/true" } }),
        DEPLOY_AGENT_STATE_DIR: join(dir, "state"),
        DEPLOY_AGENT_ROOT: join(dir, "root"),
      });
      const { code, logs } = await exitOf(proc);
      expect(code, logs).toBe(2);
      expect(logs).toContain("deploy-agent: nats-server at 127.0.0.1:");
      expect(logs).toContain("is version 2.9.10; nats-deploy needs 2.11.0 or later");
    });
  });
});
