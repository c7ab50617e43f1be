// The coordinator's view of deploy_releases: the desired release of every
// (app, environment), rebuilt from the bucket at start and kept current by a
// watch (as registry.ts does for agents), so ListAgents and convergence
// compare agents with it without a round trip. Writes go through
// recordDesiredRelease; GetRelease reads the bucket itself (the key's
// revisions are the history).
import type { KV, KvEntry } from "@nats-io/kv";
import { followBucket, type BucketFollower } from "../followBucket.js";
import { parseDesiredRelease, releaseKey, type DeploymentRecord, type DesiredRelease, type Logger } from "../../../shared/src/index.js";
import { recordDesiredRelease, releaseOfEntry, type RecordOutcome } from "./recordDesiredRelease.js";

/** Revisions of one key the bucket keeps (the KV maximum): the history GetRelease shows. */
export const RELEASE_HISTORY = 64;

export class ReleaseBook {
  readonly #releases = new Map<string, { release: DesiredRelease; revision: number }>();
  #follower: BucketFollower | undefined;
  /** Called when a desired release changes (after start). */
  onChange: (release: DesiredRelease) => void = () => undefined;

  constructor(
    readonly kv: KV,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.#follower = await followBucket(this.kv, (e, live) => this.#apply(e, live));
  }

  #apply(e: KvEntry, notify: boolean): void {
    const prev = this.#releases.get(e.key);
    if (prev && prev.revision >= e.revision) return;
    if (e.operation !== "PUT") {
      this.#releases.delete(e.key);
      return;
    }
    try {
      const release = parseDesiredRelease(e.value);
      if (releaseKey(release.app, release.environment) !== e.key) throw new Error(`release of ${release.app}/${release.environment} under key ${e.key}`);
      this.#releases.set(e.key, { release, revision: e.revision });
      if (notify) this.onChange(release);
    } catch (err) {
      this.log.warn({ key: e.key, err }, "ignoring invalid desired release");
    }
  }

  /** The desired release of `app` in `environment` as last seen. */
  get(app: string, environment: string): DesiredRelease | undefined {
    return this.#releases.get(releaseKey(app, environment))?.release;
  }

  /** The desired release of `app` in `environment` read from the bucket now (one round trip). */
  async read(app: string, environment: string): Promise<DesiredRelease | undefined> {
    return releaseOfEntry(await this.kv.get(releaseKey(app, environment)));
  }

  /** Makes `rec` (a deployment that SUCCEEDED) the desired release of its pair, unless it already is or a later one is. */
  async record(rec: DeploymentRecord): Promise<RecordOutcome> {
    // Once the bucket is loaded, a key the book lacks is one the bucket
    // lacks too, or one the create then finds (written since, deleted, or
    // holding what the book could not read), after which it reads.
    const known = this.#releases.get(releaseKey(rec.spec.app, rec.spec.environment)) ?? (this.#follower ? { revision: 0 } : undefined);
    const outcome = await recordDesiredRelease(this.kv, rec, known);
    if (outcome === "recorded") this.log.info({ deploymentId: rec.spec.id, app: rec.spec.app, environment: rec.spec.environment }, "desired release recorded");
    return outcome;
  }

  /**
   * The desired release of `app` in `environment` read from the bucket, and
   * the ones before it, newest first (as many as the bucket keeps); none
   * when nothing has succeeded there.
   */
  async history(app: string, environment: string): Promise<DesiredRelease[]> {
    const out: DesiredRelease[] = [];
    // An ordered consumer over the key's revisions; it ends after the last.
    for await (const e of await this.kv.history({ key: releaseKey(app, environment) })) {
      const r = releaseOfEntry(e);
      if (r) out.push(r);
    }
    return out.reverse();
  }

  async close(): Promise<void> {
    await this.#follower?.stop();
  }
}
