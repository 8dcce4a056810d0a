//! The request-response stream as a peer writes it: a varint length, then that many bytes of
//! protobuf, read with the limits a node applies. Whatever the bytes, reading ends in a message
//! or an error; a message read can be written and read back.
#![no_main]

use futures::io::Cursor;
use goodwill_proto::v1 as wire;
use goodwill_protocol::codec::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, read_message, write_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    futures::executor::block_on(async {
        let mut stream = Cursor::new(rest);
        if first % 2 == 0 {
            if let Ok(request) = read_message::<wire::Request, _>(&mut stream, MAX_REQUEST_BYTES).await {
                let mut out = Cursor::new(Vec::new());
                // Written again within the limit (an encoding may differ from what was read).
                if write_message(&mut out, &request, MAX_REQUEST_BYTES).await.is_ok() {
                    let back: wire::Request =
                        read_message(&mut Cursor::new(out.into_inner()), MAX_REQUEST_BYTES)
                            .await
                            .expect("a written request reads back");
                    assert_eq!(back, request);
                }
            }
        } else {
            let _ = read_message::<wire::Response, _>(&mut stream, MAX_RESPONSE_BYTES).await;
        }
    });
});
