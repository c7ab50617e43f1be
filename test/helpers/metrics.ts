// Reading one value from a coordinator's or agent's Prometheus endpoint.

/** The value of the unlabelled sample `name` at http://127.0.0.1:<port>/metrics, or undefined when it is not there. */
export async function metricValue(port: number, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}
