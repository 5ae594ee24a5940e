/**
 * The subscription fields (PostGraphile v5 `extendSchema`, grafast `listen`):
 *
 *   instanceEvents(instanceId: UUID!, after: BigInt)  events of one process instance
 *   taskEvents(after: BigInt)                         taskCreated/Assigned/Completed/Cancelled
 *                                                     of user tasks the subscriber may see
 *   tenantEvents(after: BigInt)                       every event of the tenant (bpm_admin only)
 *
 * Each item is an EventLogEntry: the event's columns plus the
 * object it concerns (instance, userTask, externalTask, incident, definition),
 * read by PostGraphile with the subscriber's own role and settings, so RLS
 * applies to them as to any query (null when not visible).
 *
 * subscribePlan: listen(context.bpmEvents, topic) — the context's subscriber
 * is bound to the WebSocket connection's principal
 * (server/subscriptions/subscriber.ts); plan: the item itself.
 *
 * Query.eventCursor: an `after` that misses nothing from now on (see below),
 * for clients that load state and then subscribe.
 */
import { loadOneWithPgClient } from 'postgraphile/@dataplan/pg';
import { access, constant, context, inhibitOnNull, lambda, listen, type Step } from 'postgraphile/grafast';
import { extendSchema, gql } from 'postgraphile/utils';
import type { EventItem } from './stream';
import { encodeTopic, type EventTopics } from './subscriber';
import type { SubscriptionField } from './subscription';

/** The pg resources (tables) of the related objects, by field. */
const RELATED = {
  instance: { table: 'process_instance', kinds: null, id: 'instanceId' },
  userTask: { table: 'user_task', kinds: /^task/, id: 'subjectId' },
  externalTask: { table: 'external_task', kinds: /^externalTask/, id: 'subjectId' },
  incident: { table: 'incident', kinds: /^incident/, id: 'subjectId' },
  definition: { table: 'process_definition', kinds: /^definitionDeployed$/, id: 'subjectId' },
} as const;

type RelatedField = keyof typeof RELATED;

/**
 * pg_snapshot_xmin << 20, minus 1: every transaction that commits after this
 * moment has an xid at or above the snapshot's xmin, so its events have
 * higher ids (db/functions/events/emit.sql). Not the highest id in the table:
 * a transaction older than that id may still be running and commit below it.
 */
const EVENT_CURSOR_SQL = `select ((pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint << 20) - 1)::text as cursor`;

export const EventSubscriptionsPlugin: GraphileConfig.Plugin = extendSchema((build) => {
  const { pgResources, pgExecutors } = build.input.pgRegistry;
  if (!pgResources.event) {
    throw new Error('EventSubscriptionsPlugin: the database has no event log (table bpm.event); apply its migration to serve subscriptions');
  }
  const executor = pgExecutors.main;
  if (!executor) throw new Error('EventSubscriptionsPlugin: no pg executor "main" (is the bpm pgService configured?)');
  const resourceOf = (table: string) => {
    const resource = pgResources[table];
    if (!resource) {
      throw new Error(`EventSubscriptionsPlugin: no pg resource "${table}" (have: ${Object.keys(pgResources).join(', ')})`);
    }
    return resource;
  };
  const resources = Object.fromEntries(
    (Object.keys(RELATED) as RelatedField[]).map((field) => [field, resourceOf(RELATED[field].table)]),
  ) as Record<RelatedField, ReturnType<typeof resourceOf>>;

  const related = (field: RelatedField) => ($event: Step<EventItem>) => {
    const { kinds, id } = RELATED[field];
    const $id = lambda(
      $event,
      (event: EventItem): string | null => {
        if (kinds !== null && !kinds.test(event.kind)) return null;
        return event[id];
      },
      true,
    );
    return resources[field].get({ tenant_id: access($event, 'tenantId'), id: inhibitOnNull($id) });
  };

  const subscribeTo = (field: SubscriptionField) => ({
    subscribePlan(_$root: Step, fieldArgs: { getRaw(path: string): Step }) {
      const $after = fieldArgs.getRaw('after');
      const $topic =
        field === 'instanceEvents'
          ? lambda([$after, fieldArgs.getRaw('instanceId')], ([after, instanceId]) => encodeTopic(field, after, instanceId), true)
          : lambda($after, (after) => encodeTopic(field, after), true);
      return listen<EventTopics, string, Step<EventItem>>(context().get('bpmEvents'), $topic);
    },
    plan($event: Step<EventItem>) {
      return $event;
    },
  });

  return {
    typeDefs: gql`
      """
      An entry of the event log, delivered by a subscription. Resume a subscription
      after a reconnect with \`after: <id of the last event received>\`.
      """
      type EventLogEntry {
        """
        Event id: increases in delivery order; pass it as \`after\` to resume.
        """
        id: BigInt!
        kind: EventKind!
        """
        The process instance concerned (null for definitionDeployed).
        """
        instanceId: UUID
        """
        The object concerned: instance, activity instance, user task, external task, incident or definition id.
        """
        subjectId: UUID
        """
        The BPMN element concerned, if any.
        """
        elementId: String
        createdAt: Datetime!
        """
        The process instance, read with the subscriber's role (null when not visible).
        """
        instance: ProcessInstance
        """
        For task events: the user task, read with the subscriber's role (null when no longer visible to them).
        """
        userTask: UserTask
        """
        For external task events: the external task, read with the subscriber's role.
        """
        externalTask: ExternalTask
        """
        For incident events: the incident, read with the subscriber's role.
        """
        incident: Incident
        """
        For definitionDeployed: the process definition.
        """
        definition: ProcessDefinition
      }

      extend type Query {
        """
        An event id to pass as \`after\` to a subscription so that it receives every event
        committed from now on, including those of transactions still running. Read it
        before loading the state a subscription is to keep up to date (an event may then
        arrive for a change the loaded state already shows; none is missed).
        """
        eventCursor: BigInt!
      }

      extend type Subscription {
        """
        Events of one process instance the subscriber may see (activities, tasks,
        incidents, state changes), in id order. Without \`after\`: from now on.
        An instance that is unknown or not visible to the subscriber: error NOT_FOUND.
        """
        instanceEvents(instanceId: UUID!, after: BigInt): EventLogEntry!
        """
        taskCreated, taskAssigned, taskUpdated, taskCompleted, taskCancelled, taskOverdue, taskFollowUpDue and taskEscalated of the user tasks the
        subscriber may see (a bpm_user: tasks offered or assigned to them). When a task
        this subscription delivered leaves their view (claimed by or assigned to someone
        else), its next event is delivered once with userTask null.
        """
        taskEvents(after: BigInt): EventLogEntry!
        """
        Every event of the tenant, in id order. Role bpm_admin only (else error FORBIDDEN).
        """
        tenantEvents(after: BigInt): EventLogEntry!
      }
    `,
    objects: {
      Query: {
        plans: {
          eventCursor() {
            return loadOneWithPgClient(executor, constant(null), async (client, lookups) => {
              const { rows } = await client.query<{ cursor: string }>({ text: EVENT_CURSOR_SQL });
              const cursor = rows[0]?.cursor;
              if (cursor === undefined) throw new Error('eventCursor: the database returned no row');
              return lookups.map(() => cursor);
            });
          },
        },
      },
      Subscription: {
        plans: {
          instanceEvents: subscribeTo('instanceEvents'),
          taskEvents: subscribeTo('taskEvents'),
          tenantEvents: subscribeTo('tenantEvents'),
        },
      },
      EventLogEntry: {
        plans: {
          instance: related('instance'),
          userTask: related('userTask'),
          externalTask: related('externalTask'),
          incident: related('incident'),
          definition: related('definition'),
        },
      },
    },
  };
}, 'PgbpmEventSubscriptionsPlugin');
