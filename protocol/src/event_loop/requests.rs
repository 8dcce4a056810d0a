//! Requests: inbound ones screened (rate, decoding, handshake, role, bounds) before they leave as
//! events; answers matched to the query, ancestor fetch, handshake or sync range that asked.

use std::time::Instant;

use goodwill_proto::v1 as wire;
use libp2p::PeerId;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};

use super::{EventLoop, MAX_PENDING_INBOUND, THROTTLE_REST};
use crate::message::{ErrorCode, Request, Response, Role};
use crate::peers::Offence;
use crate::rate_limit::Decision;
use crate::service::{InboundId, NetworkEvent, QueryError};

impl EventLoop {
    pub(super) fn request_event(&mut self, event: request_response::Event<wire::Request, wire::Response>) {
        match event {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, .. },
                ..
            } => self.inbound_request(peer, request, channel),
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { request_id, response },
                ..
            } => self.response(peer, request_id, response),
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                tracing::debug!(%peer, %error, "request failed");
                self.ancestors.remove(&request_id);
                if let Some(reply) = self.queries.remove(&request_id) {
                    let _ = reply.send(Err(QueryError::NoAnswer(error.to_string())));
                }
                self.sync.unanswered(&request_id);
                self.drive();
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                // Includes requests over the size limit and undecodable ones.
                if matches!(error, request_response::InboundFailure::Io(_)) {
                    let reason = format!("sent a request that could not be read: {error}");
                    self.penalise(peer, Offence::UnreadableRequest, &reason);
                }
            }
            _ => {}
        }
    }

    fn inbound_request(
        &mut self,
        peer: PeerId,
        request: wire::Request,
        channel: ResponseChannel<wire::Response>,
    ) {
        let request = match self.screen(peer, request) {
            Ok(request) => request,
            Err(Some(answer)) => {
                let _ = self.swarm.behaviour_mut().requests.send_response(channel, answer.to_proto());
                return;
            }
            Err(None) => return, // dropped with its peer
        };
        let id = InboundId(self.next_inbound);
        self.next_inbound += 1;
        match self.emit(NetworkEvent::Request { peer, id, request }) {
            Ok(()) => {
                self.inbound.insert(id, (peer, channel));
            }
            Err(_) => {
                let busy = Response::error(ErrorCode::Unavailable, "busy; try again");
                let _ = self.swarm.behaviour_mut().requests.send_response(channel, busy.to_proto());
            }
        }
    }

    /// Decides what to do with an inbound request before the node sees it: the request to hand
    /// on, or the answer to give at once (`None`: no answer, the peer is being dropped).
    fn screen(&mut self, peer: PeerId, request: wire::Request) -> Result<Request, Option<Response>> {
        match self.peers.check_rate(&peer) {
            Decision::Allow => {}
            Decision::Throttle => {
                return Err(Some(Response::error(ErrorCode::RateLimited, "too many requests; slow down")));
            }
            Decision::Disconnect => {
                self.penalise(peer, Offence::Fatal, "kept flooding requests");
                let _ = self.swarm.disconnect_peer_id(peer);
                return Err(None);
            }
        }
        let request = Request::from_proto(request).map_err(|reason| {
            self.penalise(peer, Offence::BadRequest, &format!("sent a malformed request: {reason}"));
            Some(Response::error(ErrorCode::BadRequest, reason.to_string()))
        })?;
        match request {
            // The handshake, or a fresh view of the peer's head.
            Request::Status(theirs) => Err(Some(match self.handshake(peer, theirs) {
                Ok(()) => Response::Status(self.our_status()),
                Err(mismatch) => Response::error(ErrorCode::WrongChain, mismatch.to_string()),
            })),
            // What a node that knows only this one and a genesis hash asks first: answered
            // before the handshake, from memory, within the same rate limit as any request.
            Request::ChainSpec => Err(Some(match &self.chain_spec {
                Some(json) => Response::ChainSpec(json.to_string()),
                None => Response::error(ErrorCode::Unavailable, "this peer serves no chain spec"),
            })),
            _ if !self.peers.is_verified(&peer) => {
                Err(Some(Response::error(ErrorCode::Unverified, "send a status request first")))
            }
            _ if self.role == Role::Light => {
                Err(Some(Response::error(ErrorCode::Unavailable, "a light peer serves nothing")))
            }
            _ if self.inbound.len() >= MAX_PENDING_INBOUND => {
                Err(Some(Response::error(ErrorCode::Unavailable, "busy; try again")))
            }
            request => Ok(request),
        }
    }

    fn response(&mut self, peer: PeerId, request_id: OutboundRequestId, response: wire::Response) {
        let response = Response::from_proto(response);
        if let Some(reply) = self.queries.remove(&request_id) {
            let _ = reply.send(response.map_err(QueryError::from));
            return;
        }
        if let Some((asked, wanted, depth)) = self.ancestors.remove(&request_id) {
            // An answer to an ancestor request; anything but the block ends the search.
            match response {
                Ok(Response::Blocks(blocks)) => match blocks.into_iter().next() {
                    Some(block) if block.hash() == wanted => {
                        let event = NetworkEvent::Ancestor { peer: asked, block: Box::new(block), depth };
                        let _ = self.emit(event);
                    }
                    Some(_) => self.penalise(
                        asked,
                        Offence::WrongAnswer,
                        "served another block than the one asked for",
                    ),
                    None => {}
                },
                Err(reason) => {
                    self.penalise(asked, Offence::Fatal, &format!("served a malformed block: {reason}"))
                }
                Ok(_) => {}
            }
            return;
        }
        match response {
            Ok(Response::Status(theirs)) => {
                let _ = self.handshake(peer, theirs);
            }
            Ok(Response::Blocks(blocks)) => {
                tracing::debug!(%peer, count = blocks.len(), "received blocks");
                match self.sync.answered(&request_id, blocks) {
                    Ok(ready) => self.ready.extend(ready),
                    Err(misfit) => self.penalise(peer, Offence::WrongAnswer, &misfit.to_string()),
                }
                self.drive();
            }
            Ok(Response::Error(ErrorCode::WrongChain, message)) => {
                tracing::warn!(%peer, reason = message, "refused by a peer of another chain");
                if self.peers.unverify(&peer) {
                    self.count_peers();
                }
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Ok(Response::Error(ErrorCode::RateLimited, _)) => {
                // Over the peer's request budget: the range goes to others, and this peer is
                // left alone for a while rather than pushed into disconnecting us.
                tracing::debug!(%peer, "throttled by the peer; resting it");
                self.sync.failed(&request_id);
                self.sync.rest(peer, Instant::now() + THROTTLE_REST);
                self.drive();
            }
            Err(reason) => {
                self.sync.failed(&request_id);
                self.penalise(peer, Offence::Fatal, &format!("served a malformed answer: {reason}"));
                self.drive();
            }
            Ok(_) => {
                // An error answer to a range request: another peer gets the range.
                self.sync.failed(&request_id);
                self.drive();
            }
        }
    }
}
