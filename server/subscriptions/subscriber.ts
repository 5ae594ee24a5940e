/**
 * The bridge between grafast's `listen()` step and the event hub: the GraphQL
 * context of a WebSocket operation carries a GrafastSubscriber bound to the
 * connection's principal (`bpmEvents`); the subscription fields encode what
 * they want as a topic string, and `subscribe(topic)` starts a hub
 * subscription with the principal's own settings.
 */
import { SafeError, type GrafastSubscriber } from 'postgraphile/grafast';
import { EventHub, SubscriptionRefused, type SubscriberIdentity } from './hub';
import type { PgSettings } from './reader';
import type { EventItem } from './stream';
import type { EventFilter, SubscriptionField } from './subscription';

export type EventTopics = Record<string, EventItem>;
export type EventSubscriber = GrafastSubscriber<EventTopics>;

declare global {
  namespace Grafast {
    interface Context {
      /** Event subscriptions of this operation's principal (WebSocket operations; null over HTTP). */
      bpmEvents: EventSubscriber | null;
    }
  }
}

interface Topic {
  field: SubscriptionField;
  instanceId?: string | null;
  after?: string | null;
}

/** The topic string of a subscription field's arguments (made by the field's plan). */
export function encodeTopic(field: SubscriptionField, after: unknown, instanceId: unknown = null): string {
  return JSON.stringify({
    field,
    after: after === undefined ? null : after,
    instanceId: instanceId === undefined ? null : instanceId,
  });
}

const MAX_EVENT_ID = (1n << 63n) - 1n;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function badInput(message: string): SafeError {
  return new SafeError(message, { code: 'BAD_USER_INPUT' });
}

/** `after` as a bigint (null when absent); BAD_USER_INPUT unless a decimal event id. */
export function parseAfter(value: unknown): bigint | null {
  if (value === null || value === undefined) return null;
  const text = typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || !/^\d{1,19}$/.test(text)) throw badInput('after must be an event id (a non-negative integer)');
  const after = BigInt(text);
  if (after > MAX_EVENT_ID) throw badInput('after is beyond the largest event id');
  return after;
}

function decodeTopic(topic: string): { filter: EventFilter; after: bigint | null } {
  let parsed: Topic;
  try {
    parsed = JSON.parse(topic) as Topic;
  } catch (e) {
    throw new Error(`event subscription: malformed topic ${JSON.stringify(topic)}`, { cause: e });
  }
  const after = parseAfter(parsed.after);
  switch (parsed.field) {
    case 'tenantEvents':
    case 'taskEvents':
      return { filter: { field: parsed.field }, after };
    case 'instanceEvents': {
      const instanceId = parsed.instanceId;
      if (typeof instanceId !== 'string' || !UUID.test(instanceId)) throw badInput('instanceId must be a UUID');
      return { filter: { field: 'instanceEvents', instanceId: instanceId.toLowerCase() }, after };
    }
    default:
      throw new Error(`event subscription: unknown field in topic ${JSON.stringify(topic)}`);
  }
}

/** Errors clients may see keep their message and get a code; anything else is masked by maskError. */
function clientError(e: unknown): unknown {
  if (e instanceof SubscriptionRefused) return new SafeError(e.message, { code: e.code });
  return e;
}

export function createEventSubscriber(hub: EventHub, identity: SubscriberIdentity, settings: PgSettings): EventSubscriber {
  return {
    async subscribe(topic) {
      const { filter, after } = decodeTopic(String(topic));
      try {
        return await hub.subscribe({ identity, settings, filter, after });
      } catch (e) {
        throw clientError(e);
      }
    },
  };
}
