// A target's last output lines, newest at the bottom and always in view: the
// box is shorter than the lines it keeps, so after every change it scrolls to
// the bottom, unless the reader has scrolled up to read (then it stays put
// until they scroll back down).
import { useLayoutEffect, useRef } from "preact/hooks";

// Within this many pixels of the bottom counts as "at the bottom" (sub-pixel
// rounding of scrollTop under zoom is about 1 px).
const STUCK_PX = 4;

export function OutputBox({ agentId, lines }: { agentId: string; lines: string[] }) {
  const box = useRef<HTMLPreElement>(null);
  const following = useRef(true);

  useLayoutEffect(() => {
    const el = box.current;
    if (el && following.current) el.scrollTop = el.scrollHeight;
  });

  const onScroll = (): void => {
    const el = box.current;
    if (el) following.current = el.scrollHeight - el.scrollTop - el.clientHeight <= STUCK_PX;
  };

  // One block per line: the browser test measures the newest line's box.
  return (
    <pre class="output" data-output={agentId} ref={box} onScroll={onScroll}>
      {lines.map((l, i) => (
        <span class="line" key={i}>
          {l}
        </span>
      ))}
    </pre>
  );
}
