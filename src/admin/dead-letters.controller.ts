import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { AdminTokenGuard } from '../common/admin-token.guard';
import type { Page } from '../common/paging';
import { uuidPipe } from '../common/uuid.pipe';
import type { DeadLetterDetail, DeadLetterItem } from '../queue/dead-letters.repository';
import { Actor } from './actor.decorator';
import { DeadLettersService } from './dead-letters.service';
import { DeadLettersQuery } from './dto/page.query';
import { ReplayDeadLettersBody } from './dto/replay-dead-letters.body';
import { DeadLetterDetailDto, DeadLetterPageDto, ErrorDto, ReplayedDto } from './dto/responses';

const deadLetterIdPipe = uuidPipe('dead letter');

@ApiTags('admin')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ type: ErrorDto })
@ApiBadRequestResponse({ type: ErrorDto, description: 'invalid_request' })
@Controller('admin/dead-letters')
@UseGuards(AdminTokenGuard)
export class DeadLettersController {
  constructor(private readonly deadLetters: DeadLettersService) {}

  /** Open dead letters, newest first. */
  @Get()
  @ApiOkResponse({ type: DeadLetterPageDto })
  list(@Query() query: DeadLettersQuery): Promise<Page<DeadLetterItem>> {
    return this.deadLetters.list(query);
  }

  /** Replays many: back to the queue, due now, attempts reset; at most `limit` (≤ 1000) per call. */
  @Post('replay')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: ReplayedDto })
  replayMany(
    @Body() body: ReplayDeadLettersBody,
    @Actor() actor: string,
  ): Promise<{ replayed: number } | { would_replay: number }> {
    return this.deadLetters.replayMany(body, actor);
  }

  /** One dead letter, with the event's payload. */
  @Get(':id')
  @ApiOkResponse({ type: DeadLetterDetailDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  find(@Param('id', deadLetterIdPipe) id: string): Promise<DeadLetterDetail> {
    return this.deadLetters.find(id);
  }

  @Post(':id/replay')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: ReplayedDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  @ApiConflictResponse({ type: ErrorDto, description: 'already replayed or discarded' })
  replayOne(@Param('id', deadLetterIdPipe) id: string, @Actor() actor: string): Promise<{ replayed: 1 }> {
    return this.deadLetters.replayOne(id, actor);
  }

  /** Discards: the event becomes `discarded`; the dead letter stays on record. */
  @Delete(':id')
  @HttpCode(204)
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ type: ErrorDto })
  @ApiConflictResponse({ type: ErrorDto, description: 'already replayed or discarded' })
  discard(@Param('id', deadLetterIdPipe) id: string, @Actor() actor: string): Promise<void> {
    return this.deadLetters.discard(id, actor);
  }
}
