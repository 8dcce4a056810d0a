//! A request a peer sends and a response a peer answers, read into the domain types.
#![no_main]

use goodwill_proto::v1 as wire;
use goodwill_protocol::{Request, Response};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    if first % 2 == 0 {
        if let Ok(request) = wire::Request::decode(rest)
            && let Ok(request) = Request::from_proto(request)
        {
            // What is read can be written and read again.
            Request::from_proto(request.to_proto()).expect("a written request reads");
        }
    } else if let Ok(response) = wire::Response::decode(rest) {
        let _ = Response::from_proto(response);
    }
});
