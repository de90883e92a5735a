//! SPEC §8.5 compaction under power cuts: a fault-injecting file system cuts power before
//! every operation of a wallet's compaction and after every byte of its write. Whatever
//! reached the disk, the journal opens with every live record, no retired voucher comes
//! back, and the journal is either the old one or the new one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_protocol::store::{Fs, records};
use offpay_protocol::*;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

mod wallet_life;
use wallet_life::{DAY, pay, sync, t, voucher, world};

/// One file: what a crash keeps for sure (synced) and what the running system sees.
#[derive(Clone, Debug, Default)]
struct Inode {
    durable: Vec<u8>,
    current: Vec<u8>,
}

/// A disk: inodes, and the directory's names as the system sees them and as synced.
#[derive(Clone, Debug, Default)]
struct Disk {
    inodes: Vec<Inode>,
    names: BTreeMap<PathBuf, usize>,
    durable_names: BTreeMap<PathBuf, usize>,
    /// Mutating operations so far, and their kinds with the length of each write.
    ops: Vec<(&'static str, usize)>,
    /// Power is cut before mutating operation `.0`; if it is a write, after `.1` of its
    /// bytes reached the file.
    cut: Option<(usize, usize)>,
    off: bool,
    /// A rename that happens but reports failure.
    rename_lies: bool,
    /// How many directory syncs fail from now.
    sync_dir_fails: usize,
}

impl Disk {
    /// The disk after the power came back: `names` and `data` choose, each, between what
    /// the system saw and only what was synced.
    fn after_crash(&self, names_synced: bool, data_synced: bool) -> Disk {
        let names = if names_synced {
            &self.durable_names
        } else {
            &self.names
        };
        let mut d = Disk {
            inodes: self.inodes.clone(),
            names: names.clone(),
            durable_names: names.clone(),
            ..Disk::default()
        };
        for i in &mut d.inodes {
            if data_synced {
                i.current = i.durable.clone();
            } else {
                i.durable = i.current.clone();
            }
        }
        d
    }
}

impl SimFs {
    /// An independent copy of this disk, as it is.
    fn after_crash_copy(&self) -> SimFs {
        SimFs(Rc::new(RefCell::new(self.0.borrow().clone())))
    }
}

/// The fault-injecting file system [`FileStore`] runs on.
#[derive(Clone, Default)]
struct SimFs(Rc<RefCell<Disk>>);

fn cut() -> io::Error {
    io::Error::other("power cut")
}

impl SimFs {
    /// Counts a mutating operation; fails when the power is, or just went, off. A write
    /// cut in the middle returns how many of its bytes reached the file.
    fn op(&self, kind: &'static str, len: usize) -> Result<(), usize> {
        let mut d = self.0.borrow_mut();
        if d.off {
            return Err(0);
        }
        let n = d.ops.len();
        d.ops.push((kind, len));
        match d.cut {
            Some((k, bytes)) if k == n => {
                d.off = true;
                Err(bytes)
            }
            _ => Ok(()),
        }
    }
    fn inode(&self, path: &Path) -> io::Result<usize> {
        self.0
            .borrow()
            .names
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn with<T>(&self, path: &Path, f: impl FnOnce(&mut Inode) -> T) -> io::Result<T> {
        let i = self.inode(path)?;
        Ok(f(&mut self.0.borrow_mut().inodes[i]))
    }
}

impl Fs for SimFs {
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        if self.inode(path).is_err() {
            self.create(path)?;
        }
        self.with(path, |i| i.current.clone())
    }
    fn create(&mut self, path: &Path) -> io::Result<()> {
        self.op("create", 0).map_err(|_| cut())?;
        let mut d = self.0.borrow_mut();
        match d.names.get(path).copied() {
            Some(i) => d.inodes[i].current.clear(),
            None => {
                d.inodes.push(Inode::default());
                let i = d.inodes.len() - 1;
                d.names.insert(path.to_path_buf(), i);
            }
        }
        Ok(())
    }
    fn exists(&mut self, path: &Path) -> io::Result<bool> {
        Ok(self.inode(path).is_ok())
    }
    fn write_at(&mut self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let reached = match self.op("write", bytes.len()) {
            Ok(()) => bytes.len(),
            Err(n) => n.min(bytes.len()),
        };
        self.with(path, |i| {
            let at = offset as usize;
            if i.current.len() < at + reached {
                i.current.resize(at + reached, 0);
            }
            i.current[at..at + reached].copy_from_slice(&bytes[..reached]);
        })?;
        if reached < bytes.len() || self.0.borrow().off {
            return Err(cut());
        }
        Ok(())
    }
    fn set_len(&mut self, path: &Path, len: u64) -> io::Result<()> {
        self.op("set_len", 0).map_err(|_| cut())?;
        self.with(path, |i| i.current.resize(len as usize, 0))
    }
    fn sync(&mut self, path: &Path) -> io::Result<()> {
        self.op("sync", 0).map_err(|_| cut())?;
        self.with(path, |i| i.durable = i.current.clone())
    }
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.op("rename", 0).map_err(|_| cut())?;
        let i = self.inode(from)?;
        let mut d = self.0.borrow_mut();
        d.names.remove(from);
        d.names.insert(to.to_path_buf(), i);
        match d.rename_lies {
            true => Err(io::Error::other("reported lost")),
            false => Ok(()),
        }
    }
    fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.op("remove", 0).map_err(|_| cut())?;
        self.0.borrow_mut().names.remove(path);
        Ok(())
    }
    fn sync_dir(&mut self, _dir: &Path) -> io::Result<()> {
        self.op("sync_dir", 0).map_err(|_| cut())?;
        let mut d = self.0.borrow_mut();
        if d.sync_dir_fails > 0 {
            d.sync_dir_fails -= 1;
            return Err(io::Error::other("directory sync failed"));
        }
        d.durable_names = d.names.clone();
        Ok(())
    }
}

fn all(store: &impl Store) -> Vec<Vec<u8>> {
    records(store).map(<[u8]>::to_vec).collect()
}

const PATH: &str = "/wallet.journal";

#[test]
fn a_power_cut_at_every_step_and_byte_of_a_compaction_loses_nothing_live() {
    // A wallet's life on the simulated disk: four vouchers from day 0, four from day 20;
    // six spent out and synced, then retired on day 31, when the first four have ended.
    let mut w = world();
    let shop_disk = SimFs::default();
    let mut shop = wallet_life::shop(&w, FileStore::open_in(shop_disk, "/shop").unwrap());
    let disk = SimFs::default();
    let mut wallet = wallet_life::wallet(FileStore::open_in(disk.clone(), PATH).unwrap());
    let mut vouchers = Vec::new();
    for n in 0..8u32 {
        let at = if n < 4 { t(1000) } else { t(20 * DAY) };
        let v = voucher(&mut w, &wallet, n, at);
        wallet.install_voucher(&v, &w.trust, at).unwrap();
        vouchers.push(v);
    }
    for n in [0u32, 1, 2] {
        pay(&mut w, &mut wallet, &mut shop, 600, t(2000 + n));
        pay(&mut w, &mut wallet, &mut shop, 400, t(2010 + n));
    }
    let day20 = t(20 * DAY + 100);
    // The first voucher that can pay pays: 3 (still in its window), then 4 and 5.
    for _ in [3, 4, 5] {
        pay(&mut w, &mut wallet, &mut shop, 1000, day20);
    }
    sync(&mut w, &mut wallet, day20);
    // Voucher 6 pays and syncs; voucher 7 pays and does not: both stay live.
    pay(&mut w, &mut wallet, &mut shop, 300, day20);
    sync(&mut w, &mut wallet, day20);
    let now = t(31 * DAY);
    assert_eq!(wallet.retire(now).unwrap(), 6, "0–5 spent out and synced");
    pay(&mut w, &mut wallet, &mut shop, 1000, now);
    pay(&mut w, &mut wallet, &mut shop, 500, now);

    let old = all(wallet.store());
    let before = disk.0.borrow().clone();
    let mut marks = vec![false; wallet.store().len()];
    let plan = wallet.compact(now, &mut marks).unwrap();
    let new = all(wallet.store());
    assert_eq!(plan.kept, new.len());
    assert!(new.len() < old.len() && plan.dropped > 0);
    let ops: Vec<_> = disk.0.borrow().ops[before.ops.len()..].to_vec();
    assert_eq!(
        ops.iter().map(|o| o.0).collect::<Vec<_>>(),
        ["create", "write", "sync", "rename", "sync_dir"]
    );
    let live = |wallet: &wallet_life::Life<FileStore<SimFs>>| {
        let b: Vec<_> = wallet.balances().collect();
        let p: Vec<_> = wallet
            .payments()
            .filter(|p| b.iter().any(|b| b.id == p.payment.voucher.id))
            .map(|p| {
                (
                    p.payment.bytes().to_vec(),
                    p.receipt.map(<[u8]>::to_vec),
                    p.synced,
                )
            })
            .collect();
        (b, p)
    };
    let expected = live(&wallet);
    assert_eq!(expected.0.len(), 2, "vouchers 6 and 7");
    assert_eq!(expected.1.len(), 3);

    // Every cut point: before each operation, and after each byte of the write.
    let mut cuts = Vec::new();
    for (k, (kind, len)) in ops.iter().enumerate() {
        let at = before.ops.len() + k;
        cuts.push((at, 0));
        if *kind == "write" {
            cuts.extend((1..*len).map(|b| (at, b)));
        }
    }
    cuts.push((before.ops.len() + ops.len(), 0));
    let (mut opened, mut saw_old, mut saw_new) = (0, 0, 0);
    for &(k, b) in &cuts {
        let sim = SimFs(Rc::new(RefCell::new(Disk {
            cut: Some((k, b)),
            ..before.clone()
        })));
        let mut wallet = wallet_life::wallet(FileStore::open_in(sim.clone(), PATH).unwrap());
        let _ = wallet.compact(now, &mut vec![false; wallet.store().len()]);
        let crashed = sim.0.borrow().clone();
        for (names_synced, data_synced) in
            [(false, false), (true, true), (false, true), (true, false)]
        {
            let mut disk = SimFs(Rc::new(RefCell::new(
                crashed.after_crash(names_synced, data_synced),
            )));
            let store = FileStore::open_in(disk.clone(), PATH)
                .unwrap_or_else(|e| panic!("cut {k}/{b} ({names_synced}, {data_synced}): {e:?}"));
            let got = all(&store);
            // The journal takes appends again, and keeps them.
            let mut probe = FileStore::open_in(disk.after_crash_copy(), PATH).unwrap();
            probe.append(&[0x04; 33]).unwrap();
            let mut then = got.clone();
            then.push(vec![0x04; 33]);
            let reopened = FileStore::open_in(probe.fs().clone(), PATH).unwrap();
            assert_eq!(
                all(&reopened),
                then,
                "cut {k}/{b}: an append after the crash"
            );
            if got == old {
                saw_old += 1;
            } else if got == new {
                saw_new += 1;
            } else {
                panic!("cut {k}/{b}: neither the old journal nor the new one");
            }
            assert!(
                !disk
                    .exists(Path::new("/wallet.journal.compacting"))
                    .unwrap(),
                "the unfinished file is removed"
            );
            let mut reopened = wallet_life::wallet(store);
            assert_eq!(live(&reopened), expected, "cut {k}/{b}: the live state");
            // No retired voucher comes back, even under a clock set back to its window.
            for (n, v) in vouchers.iter().enumerate().take(6) {
                let at = if n < 4 { t(1000) } else { day20 };
                let e = reopened.install_voucher(v, &w.trust, at).unwrap_err();
                assert_eq!(e.name(), "voucher-retired", "cut {k}/{b}: voucher {n}");
            }
            opened += 1;
        }
    }
    eprintln!(
        "compaction power cuts: {} cut points × 4 disk states = {opened} journals opened \
         ({saw_old} old, {saw_new} new)",
        cuts.len()
    );
    assert!(saw_old > 0 && saw_new > 0);
}

/// A wallet journal on the simulated disk, after a life that retired six vouchers: the store
/// and what a compaction at `now` keeps.
fn retired_wallet() -> (SimFs, wallet_life::Life<FileStore<SimFs>>, Timestamp) {
    let mut w = world();
    let mut shop = wallet_life::shop(&w, MemStore::<65536, 512>::new());
    let disk = SimFs::default();
    let mut wallet = wallet_life::wallet(FileStore::open_in(disk.clone(), PATH).unwrap());
    for n in 0..6u32 {
        let v = voucher(&mut w, &wallet, n, t(1000));
        wallet.install_voucher(&v, &w.trust, t(1000)).unwrap();
        pay(&mut w, &mut wallet, &mut shop, 1000, t(1100 + n));
    }
    sync(&mut w, &mut wallet, t(1200));
    assert_eq!(wallet.retire(t(1300)).unwrap(), 6);
    // Compacted once no request of theirs can be shown again (SPEC §8.1.1).
    (disk, wallet, t(3000))
}

#[test]
fn a_rename_reported_lost_that_happened_leaves_the_new_journal_in_use() {
    let (disk, mut wallet, now) = retired_wallet();
    disk.0.borrow_mut().rename_lies = true;
    let mut marks = vec![false; wallet.store().len()];
    assert!(wallet.compact(now, &mut marks).is_err());
    disk.0.borrow_mut().rename_lies = false;
    // The path names the new journal, and the store appends to it where it ends.
    let held = all(wallet.store());
    assert_eq!(held.len(), 6, "the six tombstones");
    let mut store = wallet.into_store();
    store.append(&[0x04; 33]).unwrap();
    let reopened = FileStore::open_in(disk.after_crash_copy(), PATH).unwrap();
    assert_eq!(all(&reopened).len(), 7);
    assert_eq!(all(&reopened)[..6], held[..]);
}

#[test]
fn a_directory_sync_that_failed_is_done_again_before_the_next_append() {
    let (disk, mut wallet, now) = retired_wallet();
    disk.0.borrow_mut().sync_dir_fails = 1;
    let mut marks = vec![false; wallet.store().len()];
    let e = wallet.compact(now, &mut marks).unwrap_err();
    assert_eq!(e.name(), "io");
    let before = disk.0.borrow().ops.len();
    let mut store = wallet.into_store();
    store.append(&[0x04; 33]).unwrap();
    let ops: Vec<_> = disk.0.borrow().ops[before..].iter().map(|o| o.0).collect();
    assert_eq!(ops, ["sync_dir", "write", "sync"]);
    // The rename is durable now: a crash that keeps only what was synced keeps it all.
    let synced = disk.0.borrow().after_crash(true, true);
    let reopened = FileStore::open_in(SimFs(Rc::new(RefCell::new(synced))), PATH).unwrap();
    assert_eq!(all(&reopened).len(), 7);
}
