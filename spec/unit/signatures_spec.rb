# frozen_string_literal: true

require "spec_helper"
require "rbs"

# sig/spiffe.rbs (generated from the YARD tags by script/rbs, validated by
# `rake rbs`) must describe what really exists: every declared class,
# module and method, at runtime.
RSpec.describe "RBS signatures" do
  before(:all) do
    %w[spiffe/cli spiffe/faraday spiffe/puma spiffe/rack spiffe/vault spiffe/testing/rspec].each { |path| require path }
    Spiffe::CLI::COMMANDS.each_value { |(path, _)| require path }
  end

  def declarations(decls, outer = [], &block)
    decls.each do |decl|
      next unless decl.is_a?(RBS::AST::Declarations::Class) || decl.is_a?(RBS::AST::Declarations::Module)

      path = outer + [decl.name.name.to_s]
      yield path.join("::"), decl
      declarations(decl.members, path, &block)
    end
  end

  it "declares only classes, modules and public methods that exist" do
    decls = RBS::Parser.parse_signature(File.read(File.expand_path("../../sig/spiffe.rbs", __dir__)))
    missing = []
    count = 0
    declarations(decls) do |name, decl|
      constant = Object.const_get(name)
      decl.members.grep(RBS::AST::Members::MethodDefinition).each do |method|
        count += 1
        next if method.name == :initialize

        exists = method.kind == :singleton ? constant.respond_to?(method.name) : constant.public_method_defined?(method.name)
        missing << "#{name}#{method.kind == :singleton ? '.' : '#'}#{method.name}" unless exists
      end
    rescue NameError
      missing << name
    end
    expect(missing).to eq([])
    expect(count).to be > 250
  end
end
