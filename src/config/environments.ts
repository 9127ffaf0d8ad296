/** Config of environments: where their builds fetch packages, and the build sandbox's bounds. */
import { z } from "zod";

const IndexUrlSchema = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), "must be an http:// or https:// URL");

export const EnvironmentBuildSchema = z
  .object({
    diskMb: z
      .number()
      .int()
      .min(16)
      .default(2048)
      .describe("The build sandbox's /workspace + /tmp (MiB): downloads, builds and the result."),
    memoryMb: z
      .number()
      .int()
      .min(64)
      .default(3072)
      .describe(
        "The build sandbox's memory limit (MiB); files it writes to its tmpfs count here too.",
      ),
    timeoutSeconds: z
      .number()
      .positive()
      .default(900)
      .describe("Wall-clock limit of each installer run (pip, npm) in a build (s)."),
    pids: z.number().int().min(16).default(512).describe("Processes and threads of a build."),
    maxSizeMb: z
      .number()
      .int()
      .min(1)
      .default(2048)
      .describe("Largest environment copied out of a build (MiB of file bytes)."),
    maxFiles: z
      .number()
      .int()
      .min(1)
      .default(200_000)
      .describe("Most files and directories in one environment."),
    maxDownloadMb: z
      .number()
      .int()
      .min(1)
      .default(4096)
      .describe("Bytes a build may move through the egress proxy (MiB)."),
  })
  .strict();

export const EnvironmentsConfigSchema = z
  .object({
    pythonIndexUrl: IndexUrlSchema.default("https://pypi.org/simple").describe(
      "Package index pip uses in builds (PIP_INDEX_URL); its host is allowed through the egress proxy.",
    ),
    npmRegistry: IndexUrlSchema.default("https://registry.npmjs.org/").describe(
      "npm registry used in builds; its host is allowed through the egress proxy.",
    ),
    extraHosts: z
      .array(z.string().min(1).max(253))
      .default(["files.pythonhosted.org"])
      .describe(
        "More hosts a build may reach on the index's port (where an index serves its files from).",
      ),
    build: EnvironmentBuildSchema.default(EnvironmentBuildSchema.parse({})).describe(
      "Bounds of the sandbox that builds an environment (the installer is untrusted code).",
    ),
  })
  .strict();

export type EnvironmentsConfig = z.infer<typeof EnvironmentsConfigSchema>;
