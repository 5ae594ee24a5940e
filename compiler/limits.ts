/**
 * Resource limits of the BPMN compiler. Deployments are untrusted input: every
 * file is checked against these before (and while) it is parsed, so a hostile
 * file costs bounded time and memory.
 */

/** Largest accepted BPMN file, in bytes. */
export const MAX_FILE_BYTES = 5 * 1024 * 1024;

/** Deepest accepted XML element nesting (the BPMN root element is depth 1). */
export const MAX_NESTING_DEPTH = 100;

/** Most XML elements accepted in one file (diagram elements included). */
export const MAX_ELEMENTS = 100_000;

/** Most attributes (namespace declarations included) accepted on one XML element. */
export const MAX_ATTRIBUTES_PER_ELEMENT = 500;

/** Most problems (and, separately, warnings) reported for one file; the rest are summarised in one line. */
export const MAX_PROBLEMS_PER_FILE = 500;

/**
 * Budget for the inclusive-gateway `upstream` lists of one process (sum of their
 * lengths). They grow quadratically with chained joins; a model beyond this is refused.
 */
export const MAX_UPSTREAM_ENTRIES = 1_000_000;

/** Wall-clock limit for parsing one file (the parser runs in a worker thread that is terminated after this). */
export const PARSE_TIMEOUT_MS = 10_000;

/** Heap limits of the parser worker thread, in MB. */
export const PARSE_MAX_OLD_GENERATION_MB = 256;
export const PARSE_MAX_YOUNG_GENERATION_MB = 32;

/** Files parsed at the same time by compileBpmnFiles (each in its own worker thread). */
export const MAX_PARALLEL_PARSES = 4;
