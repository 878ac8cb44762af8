//! Group-relative advantages (GRPO, the paper's Eq. 4): each completion's
//! reward is normalised by the mean and standard deviation of the rewards of
//! its own group (the G completions of one prompt).

/// Advantages of one group: `(r - mean) / (std + eps)`, or `r - mean` when
/// `scale_by_std` is false (Dr. GRPO's variant).
///
/// `std` is the unbiased (N-1) standard deviation, as `torch.std` computes it
/// in verl's `compute_grpo_outcome_advantage`; a group of one gets mean 0 and
/// std 1 there, and here. A group whose rewards are all equal gets zero
/// advantages: it carries no learning signal.
///
/// ```
/// let adv = toolgym_grpo::group_advantages(&[1.0, 0.0, 0.0, 0.0, 1.0], true, 1e-6);
/// assert!((adv[0] - 1.0954).abs() < 1e-3 && (adv[1] + 0.7303).abs() < 1e-3);
/// assert_eq!(toolgym_grpo::group_advantages(&[1.0, 1.0], true, 1e-6), vec![0.0, 0.0]);
/// assert_eq!(toolgym_grpo::group_advantages(&[0.1; 3], true, 0.0), vec![0.0; 3]);
/// ```
pub fn group_advantages(rewards: &[f64], scale_by_std: bool, eps: f64) -> Vec<f64> {
    let n = rewards.len();
    if n == 0 {
        return Vec::new();
    }
    if n > 1 && rewards.iter().all(|&r| r == rewards[0]) {
        // Exactly 0 whatever `eps` (the mean of equal rewards can differ
        // from them by rounding: [0.1; 3] centres to -1.4e-17).
        return vec![0.0; n];
    }
    let (mean, std) = if n == 1 {
        (0.0, 1.0)
    } else {
        let mean = rewards.iter().sum::<f64>() / n as f64;
        let var = rewards.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var.sqrt())
    };
    rewards
        .iter()
        .map(|r| {
            let centred = r - mean;
            if scale_by_std {
                centred / (std + eps)
            } else {
                centred
            }
        })
        .collect()
}

/// Advantages for many groups laid out consecutively (`rewards.len()` must
/// be a multiple of `group_size`).
pub fn batch_advantages(
    rewards: &[f64],
    group_size: usize,
    scale_by_std: bool,
    eps: f64,
) -> Vec<f64> {
    batch_advantages_leaving_out(rewards, &[], group_size, scale_by_std, eps)
}

/// [`batch_advantages`] with the members marked in `left_out` (an env
/// failure: the episode says nothing of the policy) taken out of their
/// group: each group is normalised over the rest, the left-out members get
/// advantage 0, and a group with fewer than two members left carries no
/// signal (all 0). An empty `left_out` leaves no one out.
///
/// ```
/// let adv = toolgym_grpo::batch_advantages_leaving_out(
///     &[1.0, 0.0, 0.0, 1.0], &[false, false, true, false], 4, true, 1e-6);
/// assert_eq!(adv[2], 0.0);
/// let rest = toolgym_grpo::group_advantages(&[1.0, 0.0, 1.0], true, 1e-6);
/// assert_eq!([adv[0], adv[1], adv[3]], [rest[0], rest[1], rest[2]]);
/// ```
pub fn batch_advantages_leaving_out(
    rewards: &[f64],
    left_out: &[bool],
    group_size: usize,
    scale_by_std: bool,
    eps: f64,
) -> Vec<f64> {
    let size = group_size.max(1);
    let mut out = Vec::with_capacity(rewards.len());
    for (g, group) in rewards.chunks(size).enumerate() {
        let out_of = |i: usize| left_out.get(g * size + i).copied().unwrap_or(false);
        if !(0..group.len()).any(out_of) {
            out.extend(group_advantages(group, scale_by_std, eps));
            continue;
        }
        let kept: Vec<f64> = (0..group.len())
            .filter(|&i| !out_of(i))
            .map(|i| group[i])
            .collect();
        let mut adv = if kept.len() >= 2 {
            group_advantages(&kept, scale_by_std, eps)
        } else {
            vec![0.0; kept.len()]
        }
        .into_iter();
        out.extend((0..group.len()).map(|i| {
            if out_of(i) {
                0.0
            } else {
                adv.next().unwrap_or(0.0)
            }
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_values() {
        // mean 0.4, unbiased std sqrt(0.3) = 0.5477226
        let a = group_advantages(&[1.0, 0.0, 0.0, 0.0, 1.0], true, 1e-6);
        let std = 0.3f64.sqrt();
        assert!((a[0] - 0.6 / (std + 1e-6)).abs() < 1e-12);
        assert!((a[1] + 0.4 / (std + 1e-6)).abs() < 1e-12);
        assert!((a.iter().sum::<f64>()).abs() < 1e-9);
        let b = group_advantages(&[1.0, 0.0, 0.0, 0.0, 1.0], false, 1e-6);
        assert!((b[0] - 0.6).abs() < 1e-12 && (b[1] + 0.4).abs() < 1e-12);
        assert_eq!(group_advantages(&[0.0; 5], true, 1e-6), vec![0.0; 5]);
        // A group of one: mean 0, std 1 (verl).
        assert_eq!(
            group_advantages(&[0.7], true, 1e-6),
            vec![0.7 / (1.0 + 1e-6)]
        );
        let batch = batch_advantages(&[1.0, 0.0, 0.5, 0.5], 2, true, 1e-6);
        assert!((batch[0] - 0.5 / (0.5f64.sqrt() + 1e-6)).abs() < 1e-9);
        assert_eq!(&batch[2..], &[0.0, 0.0]);
    }

    #[test]
    fn left_out_members_take_no_part_in_their_group() {
        let rewards = [
            1.0, 0.0, 0.0, 1.0, 0.0, /* group 2 */ 1.0, 0.0, 0.0, 0.0, 0.0,
        ];
        let mut left_out = [false; 10];
        // Group 1 loses member 1; group 2 keeps one member only.
        left_out[1] = true;
        left_out[6..].fill(true);
        let adv = batch_advantages_leaving_out(&rewards, &left_out, 5, true, 1e-6);
        let rest = group_advantages(&[1.0, 0.0, 1.0, 0.0], true, 1e-6);
        assert_eq!(adv[..5], [rest[0], 0.0, rest[1], rest[2], rest[3]]);
        assert_eq!(adv[5..], [0.0; 5], "one member left: no signal");
        // Nothing left out: the plain advantages, bit for bit.
        assert_eq!(
            batch_advantages_leaving_out(&rewards, &[false; 10], 5, true, 1e-6),
            batch_advantages(&rewards, 5, true, 1e-6)
        );
        assert_eq!(
            batch_advantages_leaving_out(&rewards, &[], 5, false, 1e-6),
            batch_advantages(&rewards, 5, false, 1e-6)
        );
    }
}
