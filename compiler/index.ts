/**
 * The BPMN compiler's public API: BPMN XML files in, compiled resources
 * (compiler/graph.ts) or every problem found out.
 */
import { createHash } from 'crypto';
import { compileDefinitions, parseBpmnXml, prescanXml } from './bpmn';
import type { CompiledResource, CompileProblem, CompileResult } from './graph';
import { compileDmnDefinitions } from './dmn';
import { MAX_FILE_BYTES, MAX_PARALLEL_PARSES } from './limits';

export type { CompiledResource, CompileProblem, CompileResult } from './graph';

export type CompileFilesResult =
  | { ok: true; resources: CompiledResource[]; warnings: CompileProblem[] }
  | { ok: false; problems: CompileProblem[]; warnings: CompileProblem[] };

/**
 * Compiles one BPMN file. Never throws for problems of the file (they are all
 * collected in `problems`); throws only if the compiler itself cannot run.
 */
export async function compileBpmn(fileName: string, xml: string | Buffer): Promise<CompileResult> {
  const bytes = typeof xml === 'string' ? Buffer.from(xml, 'utf8') : xml;
  const hash = createHash('sha256').update(bytes).digest('hex');
  const fileProblem = (message: string): CompileProblem => ({ file: fileName, elementId: null, message });
  const fail = (problems: CompileProblem[]): CompileResult => ({ ok: false, problems, warnings: [] });

  if (bytes.length > MAX_FILE_BYTES) {
    return fail([fileProblem(`file is larger than ${MAX_FILE_BYTES / (1024 * 1024)} MB (${bytes.length} bytes)`)]);
  }
  if (bytes.length === 0) return fail([fileProblem('file is empty')]);
  const text = typeof xml === 'string' ? stripBom(xml) : decodeUtf8(bytes);
  if (text === null) return fail([fileProblem('file is not valid UTF-8 (BPMN files must be UTF-8 encoded)')]);

  const pre = prescanXml(text);
  if (pre.length > 0) return fail(pre.map(fileProblem));

  if (isDmn(fileName, text)) return compileDmn(fileName, text, hash);
  const parsed = await parseBpmnXml(text);
  if (!parsed.ok) return fail([fileProblem(parsed.message)]);

  const result = compileDefinitions(fileName, text, parsed.root, parsed.warnings);
  if (result.problems.length > 0) return { ok: false, problems: result.problems, warnings: result.warnings };
  return {
    ok: true,
    resource: { name: fileName, hash, xml: text, processes: result.processes, decisions: [] },
    warnings: result.warnings,
  };
}

/** A DMN file: named *.dmn, or its root declares a DMN namespace. */
function isDmn(fileName: string, text: string): boolean {
  return /\.dmn$/i.test(fileName) || /xmlns(?::\w+)?\s*=\s*["']https?:\/\/www\.omg\.org\/spec\/DMN\//.test(text.slice(0, 4096));
}

async function compileDmn(fileName: string, text: string, hash: string): Promise<CompileResult> {
  const fail = (message: string): CompileResult => ({ ok: false, problems: [{ file: fileName, elementId: null, message }], warnings: [] });
  const parsed = await parseBpmnXml(text, undefined, 'dmn');
  if (!parsed.ok) {
    // DMN 1.1 and 1.2 files fail as "not DMN 1.3"; Camunda Modeler converts them when it saves them
    return fail(parsed.message.startsWith('not a BPMN') ? DMN_VERSION_HINT : parsed.message);
  }
  const result = compileDmnDefinitions(fileName, text, parsed.root, parsed.warnings);
  if (result.problems.length > 0) return { ok: false, problems: result.problems, warnings: [] };
  return { ok: true, resource: { name: fileName, hash, xml: text, processes: [], decisions: result.decisions }, warnings: [] };
}

const DMN_VERSION_HINT =
  'not a DMN 1.3 file: the root element must be <definitions> in namespace https://www.omg.org/spec/DMN/20191111/MODEL/ (open and save DMN 1.1 or 1.2 files in Camunda Modeler 5 or later to convert them)';

/**
 * Compiles several files (one deployment). All problems of all files are
 * returned; process ids must be unique across the files.
 */
export async function compileBpmnFiles(files: { name: string; xml: string | Buffer }[]): Promise<CompileFilesResult> {
  const results = await mapLimited(files, MAX_PARALLEL_PARSES, (f) => compileBpmn(f.name, f.xml));
  const problems: CompileProblem[] = [];
  const warnings: CompileProblem[] = [];
  const resources: CompiledResource[] = [];
  const seenNames = new Set<string>();
  for (const f of files) {
    if (seenNames.has(f.name)) problems.push({ file: f.name, elementId: null, message: 'file name appears more than once in the deployment' });
    seenNames.add(f.name);
  }
  for (const r of results) {
    warnings.push(...r.warnings);
    if (r.ok) resources.push(r.resource);
    else problems.push(...r.problems);
  }
  const keys = new Map<string, string>();
  const decisionKeys = new Map<string, string>();
  for (const res of resources) {
    for (const p of res.processes) {
      const other = keys.get(p.key);
      if (other !== undefined) {
        problems.push({ file: res.name, elementId: p.key, message: `process id "${p.key}" is also defined in ${other}` });
      } else {
        keys.set(p.key, res.name);
      }
    }
    for (const d of res.decisions) {
      const other = decisionKeys.get(d.key);
      if (other !== undefined) problems.push({ file: res.name, elementId: d.key, message: `decision id "${d.key}" is also defined in ${other}` });
      else decisionKeys.set(d.key, res.name);
    }
  }
  problems.push(...unboundDeploymentDecisions(resources, decisionKeys));
  if (problems.length > 0) return { ok: false, problems, warnings };
  return { ok: true, resources, warnings };
}

/** Business rule tasks with binding "deployment" whose decision is in none of the deployment's DMN files. */
function unboundDeploymentDecisions(resources: CompiledResource[], decisionKeys: Map<string, string>): CompileProblem[] {
  const problems: CompileProblem[] = [];
  for (const res of resources) {
    for (const p of res.processes) {
      for (const [id, node] of Object.entries(p.graph.nodes)) {
        for (const m of [...(node.inputs ?? []), ...(node.outputs ?? [])]) {
          const call = m.value !== null && 'decision' in m.value ? m.value.decision : null;
          if (call?.binding === 'deployment' && !decisionKeys.has(call.key)) {
            problems.push({ file: res.name, elementId: id, message: `decision ${call.key} is bound to the deployment, but none of its DMN files defines it; deploy the DMN file together with the process` });
          }
        }
      }
    }
  }
  return problems;
}

/** One line per problem: `file: element <id>: reason` (or `file: reason` for file-level problems). */
export function formatProblems(problems: CompileProblem[]): string {
  return problems
    .map((p) => {
      const message = p.message.replace(/\s*[\r\n]+\s*/g, ' ');
      return p.elementId !== null ? `${p.file}: element ${p.elementId}: ${message}` : `${p.file}: ${message}`;
    })
    .join('\n');
}

function stripBom(s: string): string {
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
}

function decodeUtf8(bytes: Buffer): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes); // strips a UTF-8 BOM
  } catch {
    return null;
  }
}

async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return results;
}
