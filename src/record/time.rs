//! Record timestamps: RFC 3339, UTC, microseconds; written without allocation by the shim,
//! read back by the command's `report` (one format, one module).

/// RFC 3339, UTC, microseconds, `Z`: `2026-11-23T21:07:05.123456Z`.
pub fn format_ts(ts_us: i64, out: &mut Vec<u8>) {
    let secs = ts_us.div_euclid(1_000_000);
    let micros = ts_us.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        // Every field has its fixed width: the digits go into a stamp on the stack,
        // appended in one piece (a record's time is written by every record).
        let mut stamp = *b"0000-00-00T00:00:00.000000Z";
        put_digits(&mut stamp[0..4], y as u32);
        put_digits(&mut stamp[5..7], m as u32);
        put_digits(&mut stamp[8..10], d as u32);
        put_digits(&mut stamp[11..13], (sod / 3600) as u32);
        put_digits(&mut stamp[14..16], (sod / 60 % 60) as u32);
        put_digits(&mut stamp[17..19], (sod % 60) as u32);
        put_digits(&mut stamp[20..26], micros as u32);
        out.extend_from_slice(&stamp);
        return;
    }
    push_num(out, y, 4);
    out.push(b'-');
    push_num(out, m, 2);
    out.push(b'-');
    push_num(out, d, 2);
    out.push(b'T');
    push_num(out, sod / 3600, 2);
    out.push(b':');
    push_num(out, sod / 60 % 60, 2);
    out.push(b':');
    push_num(out, sod % 60, 2);
    out.push(b'.');
    push_num(out, micros, 6);
    out.push(b'Z');
}

/// `v`'s last `dst.len()` decimal digits, zero-padded, into `dst`.
fn put_digits(dst: &mut [u8], mut v: u32) {
    for c in dst.iter_mut().rev() {
        *c = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

pub(super) fn push_num(out: &mut Vec<u8>, n: i64, width: usize) {
    let mut b = itoa::Buffer::new();
    let s = b.format(n);
    for _ in s.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(s.as_bytes());
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// RFC 3339 (`2026-11-23T21:07:05.123456Z`, any number of fraction digits, `Z` or an offset)
/// to microseconds since the Unix epoch.
pub fn parse_ts(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = b.get(from..to)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0i64, |a, d| a * 10 + i64::from(d - b'0')),
        )
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    let year = num(0, 4)?;
    let month = num(5, 7)?;
    let day = num(8, 10)?;
    let hour = num(11, 13)?;
    let min = num(14, 16)?;
    let sec = num(17, 19)?;
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == from {
            return None;
        }
        for k in 0..6 {
            let d = if from + k < i {
                i64::from(b[from + k] - b'0')
            } else {
                0
            };
            micros = micros * 10 + d;
        }
    }
    let offset_s = match &b[i..] {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == i + 6 && b[i + 3] == b':' => {
            let v = num(i + 1, i + 3)? * 3600 + num(i + 4, i + 6)? * 60;
            if *sign == b'+' {
                v
            } else {
                -v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_s;
    Some(secs * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_timestamps_read_back() {
        for us in [
            0i64,
            -1,
            1_795_468_025_123_456,
            951_782_400_000_001,
            4_102_444_799_999_999,
        ] {
            let mut out = Vec::new();
            format_ts(us, &mut out);
            let s = String::from_utf8(out).unwrap();
            assert_eq!(parse_ts(&s), Some(us), "{s}");
        }
    }
}
