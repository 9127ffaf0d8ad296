/** An environment as every interface shows it: a named, read-only set of packages. */
import { z } from "zod";

/** Lower case, digits, `.`, `_`, `-`; starts with a letter or digit; at most 63 characters. */
export const ENVIRONMENT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** The built-in environment: the host's own system packages. */
export const DEFAULT_ENVIRONMENT = "default";

export const EnvironmentNameSchema = z
  .string()
  .max(63)
  .describe(
    'A prebuilt environment (GET /v1/environments) whose packages the sandbox can import; "default" (the host\'s system packages) when absent.',
  );

export const EnvironmentPackageSchema = z.object({
  language: z.enum(["python", "node"]),
  name: z.string(),
  version: z.string(),
});

export const EnvironmentSchema = z.object({
  name: z.string(),
  builtin: z.boolean().describe("The default environment: the host's system packages."),
  languages: z.array(z.enum(["python", "node"])),
  packages: z
    .array(EnvironmentPackageSchema)
    .describe("Installed packages with versions (none listed for the default environment)."),
  sizeBytes: z.number().int().nullable().describe("Bytes of its files; null for the default."),
  fileCount: z.number().int().nullable(),
  digest: z
    .string()
    .nullable()
    .describe("sha256 over its tree (paths, modes, bytes); null for the default."),
  createdAt: z.string().nullable(),
});

export const EnvironmentListSchema = z.object({ environments: z.array(EnvironmentSchema) });

export type EnvironmentInfo = z.infer<typeof EnvironmentSchema>;
export type EnvironmentPackage = z.infer<typeof EnvironmentPackageSchema>;
