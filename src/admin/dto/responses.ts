import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** Response shapes, for the OpenAPI document (the services return plain objects of these shapes). */

export class DeadLetterItemDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() stripe_event_id!: string;
  @ApiProperty() event_type!: string;
  @ApiProperty() retry_count!: number;
  @ApiProperty({ nullable: true, type: String }) error!: string | null;
  @ApiProperty({ nullable: true, format: 'date-time', type: String, description: "the event's created" })
  original_timestamp!: string | null;
  @ApiProperty({ format: 'date-time', description: 'when it was dead-lettered' }) created_at!: string;
}

export class DeadLetterPageDto {
  @ApiProperty({ type: [DeadLetterItemDto] }) items!: DeadLetterItemDto[];
  @ApiProperty({ nullable: true, type: String, description: 'null on the last page' }) next_cursor!: string | null;
}

export class DeadLetterDetailDto extends DeadLetterItemDto {
  @ApiProperty({ type: Object, description: 'the Stripe event as received' }) payload!: Record<string, unknown>;
  @ApiProperty({ nullable: true, enum: ['replayed', 'discarded'], type: String }) resolution!: string | null;
  @ApiProperty({ nullable: true, format: 'date-time', type: String }) resolved_at!: string | null;
  @ApiProperty({ nullable: true, type: String }) resolved_by!: string | null;
}

export class ReplayedDto {
  @ApiPropertyOptional() replayed?: number;
  @ApiPropertyOptional({ description: 'with dry_run' }) would_replay?: number;
}

export class PendingItemDto {
  @ApiProperty() stripe_event_id!: string;
  @ApiProperty() event_type!: string;
  @ApiProperty({ description: 'attempts so far' }) retry_count!: number;
  @ApiProperty({ format: 'date-time' }) next_retry_at!: string;
  @ApiProperty({ nullable: true, type: String }) last_error!: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'replica holding it now' }) locked_by!: string | null;
  @ApiProperty({ format: 'date-time' }) enqueued_at!: string;
}

export class PendingPageDto {
  @ApiProperty({ type: [PendingItemDto] }) items!: PendingItemDto[];
  @ApiProperty({ nullable: true, type: String }) next_cursor!: string | null;
}

export class EventDto {
  @ApiProperty() stripe_event_id!: string;
  @ApiProperty() event_type!: string;
  @ApiProperty({ enum: ['pending', 'processed', 'ignored', 'dead', 'discarded'] }) status!: string;
  @ApiProperty({ description: 'handler runs since the event was last queued' }) attempts!: number;
  @ApiProperty({ nullable: true, type: String }) last_error!: string | null;
  @ApiProperty({ format: 'date-time' }) received_at!: string;
  @ApiProperty({ nullable: true, format: 'date-time', type: String }) processed_at!: string | null;
}

export class EventListItemDto extends EventDto {
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'the connected account it came from (Connect); null: the platform',
  })
  account_id!: string | null;
  @ApiProperty({ enum: ['webhook', 'reconcile', 'thin'], description: 'how it arrived' }) source!: string;
}

export class EventPageDto {
  @ApiProperty({ type: [EventListItemDto] }) items!: EventListItemDto[];
  @ApiProperty({ nullable: true, type: String, description: 'null on the last page' }) next_cursor!: string | null;
}

export class ReprocessingDto {
  @ApiProperty({ example: true }) reprocessing!: boolean;
}

export class AuditItemDto {
  @ApiProperty() id!: number;
  @ApiProperty({ description: "the token's holder" }) actor!: string;
  @ApiProperty({ example: 'dead_letter.replay' }) action!: string;
  @ApiProperty({ nullable: true, type: String }) target!: string | null;
  @ApiProperty({ example: 'replayed' }) result!: string;
  @ApiProperty({ nullable: true, type: Object }) details!: Record<string, unknown> | null;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
}

export class AuditPageDto {
  @ApiProperty({ type: [AuditItemDto] }) items!: AuditItemDto[];
  @ApiProperty({ nullable: true, type: String }) next_cursor!: string | null;
}

export class ErrorDto {
  @ApiProperty() statusCode!: number;
  @ApiProperty({ example: 'invalid_request' }) error!: string;
  @ApiProperty() message!: string;
}

export class CustomerEventDto {
  @ApiProperty() stripe_event_id!: string;
  @ApiProperty() event_type!: string;
  @ApiProperty({ enum: ['pending', 'processed', 'ignored', 'dead', 'discarded'] }) status!: string;
  @ApiProperty({ description: 'handler runs since the event was last queued' }) attempts!: number;
  @ApiProperty({ nullable: true, format: 'date-time', type: String, description: "the event's created" })
  created!: string | null;
  @ApiProperty({ format: 'date-time' }) received_at!: string;
  @ApiProperty({ nullable: true, format: 'date-time', type: String }) processed_at!: string | null;
  @ApiProperty({ nullable: true, type: String }) last_error!: string | null;
}

export class CustomerEventPageDto {
  @ApiProperty({ type: [CustomerEventDto] }) items!: CustomerEventDto[];
  @ApiProperty({ nullable: true, type: String, description: 'null on the last page' }) next_cursor!: string | null;
}

export class CustomerSubscriptionDto {
  @ApiProperty() stripe_subscription_id!: string;
  @ApiProperty({ description: "Stripe's status, as the latest applied event left it" }) status!: string;
  @ApiProperty({ description: 'deleted at Stripe (customer.subscription.deleted)' }) deleted!: boolean;
  @ApiProperty({ type: [String] }) price_ids!: string[];
  @ApiProperty({ type: [String] }) product_ids!: string[];
  @ApiProperty({ nullable: true, format: 'date-time', type: String }) current_period_end!: string | null;
  @ApiProperty() cancel_at_period_end!: boolean;
  @ApiProperty({ nullable: true, format: 'date-time', type: String }) canceled_at!: string | null;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
}

export class CustomerSubscriptionListDto {
  @ApiProperty({ type: [CustomerSubscriptionDto], description: 'most recently changed first, at most 100' })
  items!: CustomerSubscriptionDto[];
}

export class StatsBucketDto {
  @ApiProperty({ format: 'date-time' }) start!: string;
  @ApiProperty({ description: 'events stored' }) received!: number;
  @ApiProperty({ description: 'events processed or ignored' }) processed!: number;
  @ApiProperty({ description: 'failed attempts given another try' }) retried!: number;
  @ApiProperty({ description: 'events moved to the dead-letter queue' }) dead!: number;
}

export class StatsDto {
  @ApiProperty({ type: [StatsBucketDto], description: 'oldest first; the last is the current bucket' })
  buckets!: StatsBucketDto[];
}

export class ChangeDto {
  @ApiProperty({ example: 'subscriptions' }) table!: string;
  @ApiProperty({ type: Object, example: { stripe_subscription_id: 'sub_123' }, description: 'primary key columns' })
  key!: Record<string, unknown>;
  @ApiProperty({ type: Object, nullable: true, description: 'the committed row; null for an insert' })
  before!: Record<string, unknown> | null;
  @ApiProperty({ type: Object, nullable: true, description: 'the row the handler leaves; null for a delete' })
  after!: Record<string, unknown> | null;
}

export class DryRunDto {
  @ApiProperty({ type: [ChangeDto] }) changes!: ChangeDto[];
  @ApiProperty({
    enum: ['processed', 'ignored', 'failed'],
    description: 'what the attempt would end as (ignored: no handler for this type or mode; failed: see error)',
  })
  outcome!: string;
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'the handler error, when it would fail (changes is then empty)',
  })
  error!: string | null;
}
export class ReconcileStartedDto {
  @ApiProperty({ format: 'uuid' }) run_id!: string;
}

export class ReconcileRunDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ enum: ['schedule', 'admin'] }) trigger!: string;
  @ApiProperty({ nullable: true, type: String, description: "the token's holder, for an admin run" })
  actor!: string | null;
  @ApiProperty({ format: 'date-time', description: 'events created from' }) since!: string;
  @ApiProperty({ format: 'date-time', description: 'events created up to' }) until!: string;
  @ApiProperty() dry_run!: boolean;
  @ApiProperty({ enum: ['running', 'succeeded', 'failed'] }) status!: string;
  @ApiProperty({ description: 'events Stripe listed in the range' }) listed!: number;
  @ApiProperty({ description: 'of those, events not stored before (a dry run counts what it would store)' })
  recovered!: number;
  @ApiProperty({ nullable: true, type: String }) error!: string | null;
  @ApiProperty({ format: 'date-time' }) started_at!: string;
  @ApiProperty({ nullable: true, format: 'date-time', type: String }) finished_at!: string | null;
}

export class ReconcileRunPageDto {
  @ApiProperty({ type: [ReconcileRunDto] }) items!: ReconcileRunDto[];
  @ApiProperty({ nullable: true, type: String, description: 'null on the last page' }) next_cursor!: string | null;
}
