/**
 * Deploy-time checks of the literal timer and retry texts of a BPMN model:
 * ISO 8601 date-times, durations and repeating intervals, cron expressions,
 * camunda:failedJobRetryTimeCycle. Every check returns the reason a text is
 * refused (ready to follow the text in a problem message) or null.
 *
 * The engine parses these texts again when it arms a timer; what passes here
 * is exactly what graph.ts documents for TimerSpec, so a deployed literal
 * never fails at run time.
 */

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):?(\d{2}))?$/;
const ISO_DURATION = /^P(?!$)(\d+(?:[.,]\d+)?Y)?(\d+(?:[.,]\d+)?M)?(\d+(?:[.,]\d+)?W)?(\d+(?:[.,]\d+)?D)?(T(?=\d)(\d+(?:[.,]\d+)?H)?(\d+(?:[.,]\d+)?M)?(\d+(?:[.,]\d+)?S)?)?$/;

/** ISO 8601 duration: PnYnMnWnDTnHnMnS (at least one component; fractions allowed). */
export function isIsoDuration(text: string): boolean {
  return ISO_DURATION.test(text);
}

/** An ISO 8601 duration longer than zero. */
function isPositiveDuration(text: string): boolean {
  return isIsoDuration(text) && /[1-9]/.test(text);
}

/** ISO 8601 date-time (`2030-01-15T09:00`, seconds, fraction and offset optional), or a date alone when `dateAlone`. */
export function isIsoDateTime(text: string, dateAlone = false): boolean {
  const m = ISO_DATE_TIME.exec(text) ?? (dateAlone ? ISO_DATE.exec(text) : null);
  if (m === null) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1) return false;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return false;
  if (m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59 || (m[6] !== undefined && Number(m[6]) > 59))) return false;
  // UTC offsets run from -15:59 to +15:59 (what PostgreSQL accepts)
  if (m[7] !== undefined && (Number(m[7]) > 15 || Number(m[8]) > 59)) return false;
  return true;
}

export type TimerKind = 'date' | 'duration' | 'cycle';

/** Why a literal timeDate / timeDuration / timeCycle is refused, or null when it is valid. */
export function timerLiteralProblem(kind: TimerKind, text: string): string | null {
  switch (kind) {
    case 'date':
      return isIsoDateTime(text) ? null : 'is not an ISO 8601 date-time (e.g. 2030-01-15T09:00:00Z)';
    case 'duration':
      return isIsoDuration(text) ? null : 'is not an ISO 8601 duration (e.g. PT5M, P1DT12H, P2W)';
    case 'cycle':
      return /^R/.test(text) ? repeatingIntervalProblem(text) : cronProblem(text);
  }
}

/** `R[n]/duration` or `R[n]/start/duration`. */
function repeatingIntervalProblem(text: string): string | null {
  const parts = text.split('/');
  const shape = 'is not a supported repeating interval (R[n]/duration or R[n]/start/duration, e.g. R3/PT10M, R/2030-01-01T08:00:00Z/P1D)';
  const m = /^R(\d{0,9})$/.exec(parts[0]);
  if (m === null || parts.length < 2 || parts.length > 3) return shape;
  if (m[1] !== '' && Number(m[1]) === 0) return 'repeats zero times (R0)';
  const duration = parts[parts.length - 1];
  if (parts.length === 3 && !isIsoDateTime(parts[1])) {
    return `${shape}: "${parts[1]}" is not an ISO 8601 date-time`;
  }
  if (!isIsoDuration(duration)) return `${shape}: "${duration}" is not an ISO 8601 duration`;
  if (!isPositiveDuration(duration)) return `repeats every ${duration}; the interval must be longer than zero`;
  return null;
}

// --- cron -------------------------------------------------------------------------

interface CronField {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
  /** Index of the first name (JAN = 1, SUN = 0). */
  nameBase?: number;
  /** `?` is allowed (day of month / day of week). */
  question?: boolean;
  /** Numbers are allowed (day of week: only in the 5-field form, see below). */
  numeric?: boolean;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] as const;
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as const;

const SECOND: CronField = { name: 'second', min: 0, max: 59 };
const MINUTE: CronField = { name: 'minute', min: 0, max: 59 };
const HOUR: CronField = { name: 'hour', min: 0, max: 23 };
const DAY_OF_MONTH: CronField = { name: 'day-of-month', min: 1, max: 31, question: true };
const MONTH: CronField = { name: 'month', min: 1, max: 12, names: MONTHS, nameBase: 1 };
const YEAR: CronField = { name: 'year', min: 1970, max: 2099 };
/** Unix cron: 0-7, 0 and 7 = Sunday. */
const DAY_OF_WEEK_UNIX: CronField = { name: 'day-of-week', min: 0, max: 7, names: DAYS, nameBase: 0, question: true };
/**
 * 6/7 fields: Quartz (Camunda 7) counts 1 = Sunday, Spring (Camunda 8) 0 = Sunday,
 * so a number means different days; only names are accepted.
 */
const DAY_OF_WEEK_NAMES: CronField = { name: 'day-of-week', min: 0, max: 6, names: DAYS, nameBase: 0, question: true, numeric: false };

/**
 * Cron: 5 fields `min hour dom month dow` (unix: day of week 0-7 or names),
 * 6 fields `sec min hour dom month dow` (Quartz / Spring), 7 fields with the
 * year last (Quartz). `*`, `?` (day fields), lists, ranges, steps, month and
 * day names (case-insensitive). Not supported: `L`, `W`, `#`, `@` macros, and
 * day-of-week numbers in the 6/7-field forms (Quartz and Spring number days
 * differently).
 */
export function cronProblem(text: string): string | null {
  const fields = text.trim().split(/\s+/);
  if (text.trim().startsWith('@')) {
    return 'is not supported: cron macros (@daily, @hourly, …) are not supported; write the fields (e.g. 0 0 0 * * ?)';
  }
  let layout: CronField[];
  if (fields.length === 5) layout = [MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK_UNIX];
  else if (fields.length === 6) layout = [SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK_NAMES];
  else if (fields.length === 7) layout = [SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK_NAMES, YEAR];
  else {
    return 'is neither a repeating interval (R[n]/…) nor a cron expression (5 fields: minute hour day-of-month month day-of-week; 6 or 7 fields: seconds first, year last)';
  }
  for (let i = 0; i < fields.length; i++) {
    const reason = cronFieldProblem(fields[i], layout[i]);
    if (reason !== null) return `is not a supported cron expression: ${layout[i].name} "${fields[i]}" ${reason}`;
  }
  return null;
}

function cronFieldProblem(text: string, field: CronField): string | null {
  if (text.includes('#') || text.split(/[,/]/).some((part) => /^(\d*L|\d*W|LW|L-\d+|[A-Z]{3}L)$/i.test(part))) {
    return 'uses L, W or #, which are not supported';
  }
  if (text === '?') return field.question === true ? null : 'uses ?, which is only allowed in the day-of-month and day-of-week fields';
  for (const item of text.split(',')) {
    const reason = cronItemProblem(item, field);
    if (reason !== null) return reason;
  }
  return null;
}

function cronItemProblem(item: string, field: CronField): string | null {
  const m = /^([^/]+)(?:\/(\d{1,4}))?$/.exec(item);
  if (m === null) return `is not valid (item "${item}")`;
  const [, range, step] = m;
  if (step !== undefined && (Number(step) < 1 || Number(step) > field.max)) return `has step /${step} outside 1-${field.max}`;
  if (range === '*') return null;
  const bounds = range.split('-');
  if (bounds.length > 2) return `is not valid (item "${item}")`;
  const values: number[] = [];
  for (const b of bounds) {
    const v = cronValue(b, field);
    if (typeof v === 'string') return v;
    values.push(v);
  }
  if (values.length === 2 && values[0] > values[1]) return `has a range ${range} that runs backwards`;
  return null;
}

function cronValue(text: string, field: CronField): number | string {
  if (/^\d{1,4}$/.test(text)) {
    if (field.numeric === false) {
      return 'uses day numbers, which Quartz (1 = SUN) and Spring (0 = SUN) read differently; write day names (SUN-SAT, e.g. MON-FRI)';
    }
    const v = Number(text);
    if (v < field.min || v > field.max) return `has ${text} outside ${field.min}-${field.max}`;
    return v;
  }
  if (field.names !== undefined && field.names.includes(text.toUpperCase())) {
    return field.names.indexOf(text.toUpperCase()) + (field.nameBase ?? 0);
  }
  return `is not valid ("${text}" is not a number${field.names !== undefined ? ' or a name' : ''})`;
}

// --- job retries ----------------------------------------------------------------------

/** camunda:failedJobRetryTimeCycle `R3/PT5M` → { retries: 3, delay: 'PT5M' }, or the reason it is refused. */
export function parseRetryCycle(text: string): { retries: number; delay: string } | string {
  const t = text.trim();
  if (t.includes(',')) return 'lists of retry intervals are not supported; write R<retries>/<ISO 8601 duration> (e.g. R3/PT5M)';
  const m = /^R(\d{1,4})\/(.*)$/.exec(t);
  if (m === null) return 'is not R<retries>/<ISO 8601 duration> (e.g. R3/PT5M)';
  if (!isIsoDuration(m[2])) return `is not R<retries>/<ISO 8601 duration> (e.g. R3/PT5M): "${m[2]}" is not an ISO 8601 duration`;
  return { retries: Number(m[1]), delay: m[2] };
}
