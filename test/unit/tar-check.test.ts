/**
 * The host's strict reading of a workspace archive (src/sessions/tar-check.ts):
 * what Warden's agent writes passes; every shape a taken-over agent could use
 * to write outside /workspace on restore, or to make the host hold more, fails.
 */
import { describe, expect, it } from "vitest";
import { SNAPSHOT_DEADLINE_MS, takeDeadlineMs } from "../../src/sessions/snapshots.js";
import { TarChecker, TarRefused } from "../../src/sessions/tar-check.js";
import { pax, tar, type TarMember } from "../helpers/tar.js";

function check(archive: Buffer, maxEntries = 100, pieces = [7, 512, 1000]): TarChecker {
  const c = new TarChecker(maxEntries);
  // Fed in odd pieces: the checker must not depend on where the cuts fall.
  let at = 0;
  for (let i = 0; at < archive.length; i++) {
    const n = pieces[i % pieces.length]!;
    c.push(archive.subarray(at, at + n));
    at += n;
  }
  c.finish();
  return c;
}

const refused = (members: TarMember[], why: RegExp, end = true): void => {
  expect(() => check(tar(members, end))).toThrow(why);
  expect(() => check(tar(members, end))).toThrow(TarRefused);
};

describe("tar check", () => {
  it("passes files, directories, links inside and pax names, counting entries and bytes", () => {
    const long = `d/${"n".repeat(200)}`;
    const archive = tar([
      { name: "d/", type: "5" },
      { name: "d/a.txt", content: "hello" },
      { name: "PaxHeader", type: "x", content: pax({ path: long }) },
      { name: "ignored", content: "x".repeat(1000) },
      { name: "d/link", type: "2", linkname: "a.txt" },
      { name: "top", type: "2", linkname: "d/a.txt" },
    ]);
    const c = check(archive);
    expect(c.entries).toBe(5);
    expect(c.files).toBe(2);
    expect(c.bytes).toBe(archive.length);
  });

  it("refuses names that climb out or are absolute", () => {
    refused([{ name: "../escape", content: "x" }], /'\.\.' segment/);
    refused([{ name: "a/../../escape", content: "x" }], /'\.\.' segment/);
    refused([{ name: "/etc/passwd", content: "x" }], /absolute/);
    refused(
      [{ name: "PaxHeader", type: "x", content: pax({ path: "/etc/x" }) }, { name: "ok" }],
      /absolute/,
    );
    refused([{ name: "./x", content: "x" }], /'\.' segment/);
  });

  it("refuses links out, and anything put under a link", () => {
    refused([{ name: "etc", type: "2", linkname: "/etc" }], /link target: absolute/);
    refused([{ name: "up", type: "2", linkname: "../../etc" }], /climbs/);
    // s -> . is inside, but t -> s/.. would climb out through it.
    refused([{ name: "t", type: "2", linkname: "s/.." }], /climbs/);
    refused(
      [
        { name: "l", type: "2", linkname: "d" },
        { name: "l/passwd", content: "x" },
      ],
      /its directory is a symlink/,
    );
    refused(
      [
        { name: "f", content: "x" },
        { name: "f/x", content: "y" },
      ],
      /its directory is a file/,
    );
    refused([{ name: "nodir/x", content: "y" }], /not listed before it/);
  });

  it("refuses devices, fifos, hard links and GNU extensions", () => {
    for (const type of ["3", "4", "6", "1", "L", "K", "S", "g"])
      refused([{ name: "dev", type }], new RegExp(`entry type '${type}'|pax`));
  });

  it("refuses bad checksums, lies about sizes, duplicates, data after the end and cut-short archives", () => {
    refused([{ name: "a", content: "x", badChecksum: true }], /checksum/);
    refused([{ name: "d", type: "5", size: 10 }], /with content/);
    refused([{ name: "a" }, { name: "a" }], /listed twice/);
    refused([{ name: "a", content: "x" }], /cut short/, false);
    const after = Buffer.concat([tar([{ name: "a" }]), tar([{ name: "b" }])]);
    expect(() => check(after)).toThrow(/after the archive's end/);
    // A file that claims more content than follows.
    const lying = tar([{ name: "a", content: "x", size: 100_000 }]);
    expect(() => check(lying)).toThrow(/cut short/);
  });

  it("refuses unknown pax keys and more entries than allowed", () => {
    refused(
      [{ name: "PaxHeader", type: "x", content: pax({ "SCHILY.devmajor": "1" }) }, { name: "a" }],
      /not allowed/,
    );
    const many = Array.from({ length: 5 }, (_, i) => ({ name: `f${i}` }));
    expect(() => check(tar(many), 4)).toThrow(/more than 4 entries/);
  });
});

describe("how long taking a snapshot may last", () => {
  it("grows with the size limit, from 30 s, and stops at ten minutes", () => {
    expect(takeDeadlineMs(0)).toBe(30_000);
    expect(takeDeadlineMs(512 * 1024 * 1024)).toBe(94_000);
    expect(takeDeadlineMs(64 * 1024 * 1024 * 1024)).toBe(SNAPSHOT_DEADLINE_MS);
  });
});
