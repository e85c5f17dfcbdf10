//! `unveil-device`: the camera-side command line.

use std::path::{Path, PathBuf};
use std::process::{Command as Process, ExitCode};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use unveil_device::alloc_count::CountingAlloc;
use unveil_device::bench::{self, BenchResult};
use unveil_device::fixture::Fixture;
use unveil_device::model::Model;
use unveil_device::pipeline::{Pipeline, STAGES};
use unveil_device::precision::{self, Precision};
use unveil_device::region::RegionRestorer;
use unveil_device::serve::{BlindPipeline, MaskedPipeline, Restorer, ServeConfig, Server};
use unveil_device::{source, transport};
use unveil_shared::manifest::MANIFEST_BIN;

// Counting costs one relaxed atomic add per allocation; `bench` reports the counts.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Unveil on the camera board: restores hidden parts of subjects in frames.
#[derive(Parser, Debug)]
#[command(name = "unveil-device", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The model folder a command runs, and in which precision.
#[derive(Args, Debug)]
struct ModelArgs {
    /// Model folder (manifest.bin + ONNX files).
    #[arg(long, default_value = "models/default")]
    models: PathBuf,
    /// f32 or int8: `auto` times this folder and its twin (`<dir>-f32`, or `<dir>`
    /// for a `-f32` folder) on this machine at start-up and runs the faster; `f32`
    /// or `int8` pins it (reproducible output, no probe).
    #[arg(long, default_value = "auto")]
    precision: Precision,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the input and texture-map conventions this build expects.
    Info,
    /// Restore an image file or every PNG/JPEG in a folder.
    Restore {
        #[command(flatten)]
        models: ModelArgs,
        /// Image file or folder of images.
        #[arg(long)]
        input: PathBuf,
        /// Output folder (created); files keep their names, as PNG.
        #[arg(long)]
        out: PathBuf,
        /// Only change pixels where this mask (grey ≥ 128) is set: one file for all inputs,
        /// or a folder holding a mask of the same file stem (`.png`) per input.
        #[arg(long)]
        mask: Option<PathBuf>,
        /// Refuse images larger than this many megapixels (checked before decoding).
        #[arg(long, default_value_t = source::DEFAULT_MAX_MEGAPIXELS,
              value_parser = clap::value_parser!(u32).range(1..=1000))]
        max_megapixels: u32,
    },
    /// Time the pipeline per stage on one CPU; several folders are shown side by side.
    Bench {
        /// Model folders; each is preceded by its f32 twin `<dir>-f32` when that exists.
        #[arg(long, default_value = "models/default", num_args = 1..)]
        models: Vec<PathBuf>,
        #[arg(long, default_value_t = 300)]
        frames: usize,
        #[arg(long, default_value_t = 20)]
        warmup: usize,
        /// Also time camera frames of this size (e.g. 640x480; repeatable), each with one
        /// hole of 5 % of the frame restored at native resolution, beside the model-size row.
        #[arg(long, value_name = "WxH", value_parser = parse_frame)]
        frame: Vec<(usize, usize)>,
        /// Run one folder in this process and print its result line (used internally).
        #[arg(long, hide = true)]
        child: bool,
    },
    /// Write a small random-weight model folder that follows the graph contract, for
    /// trying the runtime before trained models exist.
    Fixture {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 128)]
        size: u16,
        /// Hidden channels of each graph's first convolution.
        #[arg(long, default_value_t = 16)]
        hidden: usize,
        #[arg(long)]
        int8: bool,
    },
    /// Restore live frames from a V4L2 camera into a folder of PNGs, at the camera's own
    /// resolution: only the hidden pixels change (as `restore` does for one image).
    #[cfg(feature = "camera")]
    Camera {
        #[command(flatten)]
        models: ModelArgs,
        #[arg(long, default_value = "/dev/video0")]
        device: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 100)]
        frames: usize,
        /// Frame size to ask the driver for (it picks the nearest it supports).
        #[arg(long, value_name = "WxH", default_value = "640x480", value_parser = parse_frame)]
        size: (usize, usize),
        /// A static hole for a fixed camera (white = hidden: a pillar, a sign, a burned-in
        /// timestamp), scaled to the frame. Without it, a model folder with an occlusion
        /// detector restores what it finds in each frame (blind mode); one without leaves
        /// the frames as they are.
        #[arg(long, value_name = "FILE")]
        mask: Option<PathBuf>,
    },
    /// Serve a camera over the framed link on a serial port or a Unix socket.
    Serve {
        #[command(flatten)]
        models: ModelArgs,
        /// Serial device (UART, USB CDC, pty), opened in raw mode.
        #[arg(long, conflicts_with = "socket")]
        serial: Option<PathBuf>,
        #[arg(long, default_value_t = 921_600)]
        baud: u32,
        /// Unix socket path to listen on.
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Abandon and reset the pipeline when a frame takes this many times the median.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..=1000))]
        watchdog: u32,
        /// Until the median is known (the first 8 frames), abandon a frame after this many
        /// milliseconds.
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..))]
        watchdog_startup_ms: u64,
        /// Unix socket: end a session whose camera sends nothing for this many seconds, so
        /// a silent peer cannot lock out other cameras (0: never). A camera that connects
        /// while another is served is answered `Error{0, Busy}`.
        #[arg(long, default_value_t = 30)]
        idle_timeout: u64,
        /// A fixed camera's hole mask (PNG/JPEG, set where grey >= 128; resized to the
        /// model's frames): every frame is restored in these pixels only, and the rest of
        /// it comes back bit for bit. Without it the camera's frames are restored blind.
        #[arg(long, value_name = "FILE")]
        mask: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // One line per failure, with its causes, whatever RUST_BACKTRACE says.
    unveil_shared::report::exit(run(Cli::parse()))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info => println!("{}", unveil_device::conventions()),
        Command::Restore {
            models,
            input,
            out,
            mask,
            max_megapixels,
        } => restore(
            load(&models)?,
            &input,
            &out,
            mask.as_deref(),
            max_megapixels,
        )?,
        Command::Bench {
            models,
            frames,
            warmup,
            frame,
            child,
        } => {
            if child {
                let [dir] = models.as_slice() else {
                    bail!("--child takes exactly one model folder");
                };
                bench::pin_to_one_cpu().context("pinning to one CPU")?;
                let result = bench::run(dir, frames, warmup, frame.first().copied())?;
                println!("{}", result.to_line());
            } else {
                bench_all(&models, frames, warmup, &frame)?;
            }
        }
        Command::Fixture {
            out,
            size,
            hidden,
            int8,
        } => {
            let fixture = Fixture {
                width: size,
                height: size,
                hidden,
                int8,
                ..Fixture::tiny()
            };
            fixture
                .write(&out)
                .with_context(|| format!("writing {}", out.display()))?;
            println!("wrote fixture model folder {}", out.display());
        }
        #[cfg(feature = "camera")]
        Command::Camera {
            models,
            device,
            out,
            frames,
            size,
            mask,
        } => camera(load(&models)?, &device, &out, frames, size, mask.as_deref())?,
        Command::Serve {
            models,
            serial,
            baud,
            socket,
            watchdog,
            watchdog_startup_ms,
            idle_timeout,
            mask,
        } => serve(
            load(&models)?,
            serial.as_deref(),
            baud,
            socket.as_deref(),
            ServeOptions {
                watchdog,
                watchdog_startup: Duration::from_millis(watchdog_startup_ms),
                idle: (idle_timeout > 0).then(|| Duration::from_secs(idle_timeout)),
                mask,
            },
        )?,
    }
    Ok(())
}

/// A clear error for a path that holds no model folder.
fn expect_folder(dir: &Path) -> Result<()> {
    if !dir.join(MANIFEST_BIN).is_file() {
        bail!(
            "no model folder at {} (expected {MANIFEST_BIN} there; export one with the host tool)",
            dir.display()
        );
    }
    Ok(())
}

/// The model folder `--models`, or its twin of the other precision (see `precision`). When a
/// probe ran or the twin was taken, the choice is printed on stdout (stderr holds only
/// errors).
fn load(args: &ModelArgs) -> Result<Arc<Model>> {
    let dir = args.models.as_path();
    expect_folder(dir)?;
    let choice = precision::choose(dir, args.precision)
        .with_context(|| format!("loading {}", dir.display()))?;
    if !choice.probe.is_empty() || choice.model.dir != dir {
        println!("{}", choice.summary());
    }
    Ok(choice.model)
}

/// Restore every input; a bad file is reported on its own line and the rest still run.
/// Nothing is written until every destination is known to be safe (no input or mask is
/// overwritten, no two inputs share an output name).
fn restore(
    model: Arc<Model>,
    input: &Path,
    out: &Path,
    mask: Option<&Path>,
    max_megapixels: u32,
) -> Result<()> {
    let mut pipeline = Pipeline::new(model)?;
    let files = if input.is_dir() {
        source::list_images(input)?
    } else {
        vec![input.to_path_buf()]
    };
    let mask_of = |file: &Path| -> Option<PathBuf> {
        let m = mask?;
        Some(if m.is_dir() {
            m.join(file.file_stem().unwrap_or_default())
                .with_extension("png")
        } else {
            m.to_path_buf()
        })
    };
    let mut protected = files.clone();
    protected.extend(files.iter().filter_map(|f| mask_of(f)));
    let dests = source::plan_outputs(&files, out, &protected)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut failed = 0usize;
    let mut regions = RegionRestorer::new();
    for (file, dest) in files.iter().zip(&dests) {
        let mut one = || -> Result<(), source::SourceError> {
            let img = source::load_rgb(file, max_megapixels)?;
            let mask = match mask_of(file) {
                Some(path) => Some(source::load_mask(&path, img.width, img.height)?),
                None => None,
            };
            let restored =
                source::restore_image(&mut pipeline, &mut regions, &img, mask.as_ref(), file)?;
            source::save_rgb(dest, &restored)
        };
        match one() {
            Ok(()) => {}
            // One input: its error is the command's, on one line.
            Err(e) if files.len() == 1 => return Err(e.into()),
            Err(e) => {
                eprintln!("error: {}", unveil_shared::report::one_line(&e));
                failed += 1;
            }
        }
    }
    let restored = files.len() - failed;
    println!("restored {restored} image(s) into {}", out.display());
    if failed > 0 {
        bail!("{failed} of {} image(s) failed (listed above)", files.len());
    }
    Ok(())
}

/// Each folder, preceded by its f32 twin (`<dir>-f32`, as `models/` ships them) if present.
fn expand(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in dirs {
        let mut twin = dir.clone().into_os_string();
        twin.push("-f32");
        let twin = PathBuf::from(twin);
        if twin.join(MANIFEST_BIN).is_file() && !dirs.contains(&twin) && !out.contains(&twin) {
            out.push(twin);
        }
        if !out.contains(dir) {
            out.push(dir.clone());
        }
    }
    out
}

/// `--frame`'s `WxH`.
fn parse_frame(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("expected WIDTHxHEIGHT (e.g. 640x480), got {s:?}");
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    let (w, h): (usize, usize) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
        return Err(format!("{s}: each side must be in 16..=8192"));
    }
    Ok((w, h))
}

fn bench_all(
    models: &[PathBuf],
    frames: usize,
    warmup: usize,
    sizes: &[(usize, usize)],
) -> Result<()> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let mut results = Vec::new();
    for dir in expand(models) {
        // A clear error before spawning.
        expect_folder(&dir)?;
        Model::load(&dir).with_context(|| format!("loading {}", dir.display()))?;
        for size in std::iter::once(None).chain(sizes.iter().map(Some)) {
            let mut child = Process::new(&exe);
            child
                .args(["bench", "--child", "--frames", &frames.to_string()])
                .args(["--warmup", &warmup.to_string()]);
            if let Some((w, h)) = size {
                child.args(["--frame", &format!("{w}x{h}")]);
            }
            let out = child
                .arg("--models")
                .arg(&dir)
                .output()
                .context("running the benchmark child")?;
            if !out.status.success() {
                bail!(
                    "benchmark of {} failed: {}",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text.lines().last().unwrap_or_default();
            results.push((dir.clone(), BenchResult::from_line(line)?));
        }
    }
    print_table(&results);
    Ok(())
}

fn print_table(results: &[(PathBuf, BenchResult)]) {
    println!(
        "one CPU, {} frames each; latencies p50/p99 in ms",
        results.first().map_or(0, |r| r.1.frames)
    );
    let mut header = format!("{:<28} {:>5} {:>9} {:>8}", "model", "fmt", "frame", "fps");
    for s in STAGES.iter().chain(["total"].iter()) {
        header += &format!(" {s:>14}");
    }
    header += &format!(
        " {:>9} {:>16} {:>14}",
        "peak RSS", "allocs/frame", "blind: detect"
    );
    println!("{header}");
    for (dir, r) in results {
        let mut row = format!(
            "{:<28} {:>5} {:>9} {:>8.1}",
            dir.display().to_string(),
            r.format,
            format!("{}x{}", r.width, r.height),
            r.fps
        );
        for (p50, p99) in r.p50_us.iter().zip(&r.p99_us) {
            row += &format!(
                " {:>14}",
                format!("{:.2}/{:.2}", f64::from(*p50) / 1e3, f64::from(*p99) / 1e3)
            );
        }
        let allocs = r
            .allocs
            .iter()
            .map(|a| format!("{a:.0}"))
            .collect::<Vec<_>>()
            .join("/");
        row += &format!(" {:>6} MiB {:>16}", r.peak_rss_kib / 1024, allocs);
        row += &match r.detect_us {
            [0, 0] => format!(" {:>14}", "-"),
            [p50, p99] => format!(
                " {:>14}",
                format!("{:.2}/{:.2}", f64::from(p50) / 1e3, f64::from(p99) / 1e3)
            ),
        };
        println!("{row}");
    }
    // Each frame size: the second format against the first, measured in this run.
    for (i, (_, a)) in results.iter().enumerate() {
        let same_size = |r: &BenchResult| (r.width, r.height) == (a.width, a.height);
        let earlier = results[..i].iter().any(|(_, r)| same_size(r));
        let other = results[i + 1..]
            .iter()
            .find(|(_, r)| same_size(r) && r.format != a.format);
        if let (false, Some((_, b))) = (earlier, other) {
            println!(
                "{}x{}: {} vs {}: {:.2}x fps, {:.2}x p50 latency",
                a.width,
                a.height,
                b.format,
                a.format,
                b.fps / a.fps,
                f64::from(b.p50_us[5]) / f64::from(a.p50_us[5].max(1))
            );
        }
    }
    println!(
        "allocs/frame per stage ({}); stage1/stage2 are tract's own output tensors; \
         blind: detect is the occlusion detector's extra time per frame without a mask",
        STAGES.join("/")
    );
}

#[cfg(feature = "camera")]
fn camera(
    model: Arc<Model>,
    device: &Path,
    out: &Path,
    frames: usize,
    (width, height): (usize, usize),
    mask: Option<&Path>,
) -> Result<()> {
    use unveil_device::camera::Camera;
    use unveil_device::region::RegionRestorer;
    use unveil_shared::ImageU8;
    let mut pipeline = Pipeline::new(model)?;
    let mut regions = RegionRestorer::new();
    let mut cam = Camera::open(device, width as u32, height as u32)
        .with_context(|| format!("opening {}", device.display()))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let (cw, ch) = cam.size();
    let mask = mask.map(|p| source::load_mask(p, cw, ch)).transpose()?;
    let (w, h) = pipeline.model().size();
    let how = match (&mask, pipeline.can_detect()) {
        (Some(m), _) => format!("static mask, {} hidden pixels", m.count()),
        (None, true) => "blind: the occlusion detector finds the hole".into(),
        (None, false) => "no mask and no detector: frames pass through".into(),
    };
    println!("{}: {cw}x{ch}, model {w}x{h}, {how}", device.display());
    let mut raw = ImageU8::new(cw, ch, 3);
    let started = std::time::Instant::now();
    for i in 0..frames {
        cam.next_frame(&mut raw)?;
        let dest = out.join(format!("frame_{i:05}.png"));
        let restored =
            source::restore_image(&mut pipeline, &mut regions, &raw, mask.as_ref(), &dest)?;
        source::save_rgb(&dest, &restored)?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{frames} frames in {secs:.1} s ({:.1} fps incl. capture and PNG writing)",
        frames as f64 / secs
    );
    Ok(())
}

/// `serve`'s guards, from its flags.
struct ServeOptions {
    watchdog: u32,
    watchdog_startup: Duration,
    idle: Option<Duration>,
    mask: Option<PathBuf>,
}

fn serve(
    model: Arc<Model>,
    serial: Option<&Path>,
    baud: u32,
    socket: Option<&Path>,
    options: ServeOptions,
) -> Result<()> {
    let config = ServeConfig {
        width: model.manifest.width,
        height: model.manifest.height,
        model_id: model.manifest.name.clone(),
        watchdog_factor: options.watchdog,
        watchdog_floor: Duration::from_millis(100),
        watchdog_startup: options.watchdog_startup,
    };
    match &options.mask {
        Some(path) => {
            let (w, h) = model.size();
            let mask = source::load_mask(path, w, h)?;
            let server = Server::new(config, || {
                Ok(MaskedPipeline::new(
                    Pipeline::new(model.clone())?,
                    mask.clone(),
                ))
            })?;
            listen(&server, serial, baud, socket, options.idle)
        }
        None if model.detector.is_some() => {
            let server = Server::new(config, || {
                Ok(BlindPipeline::new(Pipeline::new(model.clone())?))
            })?;
            listen(&server, serial, baud, socket, options.idle)
        }
        None => {
            let server = Server::new(config, || Pipeline::new(model.clone()))?;
            listen(&server, serial, baud, socket, options.idle)
        }
    }
}

/// Serve `server` on the serial port or the socket the command line names.
fn listen<R, F>(
    server: &Server<R, F>,
    serial: Option<&Path>,
    baud: u32,
    socket: Option<&Path>,
    idle: Option<Duration>,
) -> Result<()>
where
    R: Restorer,
    F: Fn() -> Result<R, unveil_device::pipeline::PipelineError> + Sync,
{
    match (serial, socket) {
        (Some(port), _) => transport::serve_serial(server, port, baud, None)?,
        (None, Some(path)) => {
            transport::serve_listener(server, &transport::bind_unix(path)?, None, idle)?
        }
        (None, None) => bail!("give --serial PATH or --socket PATH"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `unveil-device` command in the README's `sh` blocks parses as written
    /// (`[optional]` parts included; `camera` only in a `--features camera` build).
    #[test]
    fn the_readme_commands_parse() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        let mut in_sh = false;
        let mut checked = 0;
        for line in readme.lines() {
            if line.starts_with("```") {
                in_sh = line == "```sh";
                continue;
            }
            let command = line.split(" #").next().unwrap_or_default().trim();
            let Some(args) = [
                "cargo run --release -p unveil-device -- ",
                "./unveil-device ",
            ]
            .iter()
            .find_map(|p| command.strip_prefix(p))
            .filter(|_| in_sh) else {
                continue;
            };
            if args.starts_with("camera") && !cfg!(feature = "camera") {
                continue;
            }
            let words = args.split_whitespace().map(|w| w.trim_matches(['[', ']']));
            if let Err(e) = Cli::try_parse_from(std::iter::once("unveil-device").chain(words)) {
                panic!("`unveil-device {args}` does not parse: {e}");
            }
            checked += 1;
        }
        assert!(
            checked >= 5,
            "only {checked} device commands found in the README"
        );
    }
}
